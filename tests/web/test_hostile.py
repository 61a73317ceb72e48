"""Hostile and unlucky input on a real server and database (issue 14): never a 500, nothing stored on a 4xx.

Strings (NUL, lone surrogates, byte bounds), bodies (size while reading, content type, malformed JSON), timestamps
(§3a "Time"), cursors, the attribution answer of §3.1 for malformed fields, 405 `Allow`, the OpenAPI contract.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import orjson
import psycopg
import pytest

from mandate.group_commit import _connection_lost
from mandate.web.errors import sqlstate_status
from tests.helpers import scalar
from tests.web.conftest import LiveServer
from tests.web.test_api import CRITICAL_DROP, ORG, _counts, api, flat

__all__ = ["api"]  # the fixture, imported for the tests below

NOTHING = (0, 0, 0, 0)


def _post_raw(api: LiveServer, path: str, raw: bytes, content_type: str = "application/json") -> Any:
    return api.client.post(path, content=raw, headers={"content-type": content_type})


def _rejections(api: LiveServer) -> list[dict[str, Any]]:
    with psycopg.connect(api.database_url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(
            "SELECT reason, problems, decision_id, organization_id, domain, intent, stage, verdict::text AS verdict "
            "FROM mandate.decision_rejections ORDER BY received_at"
        ).fetchall()


# -- strings -----------------------------------------------------------------------------------------------------

NUL_FIELDS = [
    ("actor", ["actor"]),
    ("target", ["target"]),
    ("unstructured_context", ["unstructured_context"]),
    ("context value", ["context", "cascade"]),
    ("scope service", ["scope", "service"]),
]


@pytest.mark.parametrize(("label", "path"), NUL_FIELDS, ids=[f[0] for f in NUL_FIELDS])
def test_a_nul_in_a_body_field_is_422_naming_the_field_and_stores_nothing(
    api: LiveServer, label: str, path: list[str]
) -> None:
    body = flat(*CRITICAL_DROP)
    holder = body
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = "a\u0000b"
    r = api.client.post("/api/decisions", json=body)
    assert r.status_code == 422, r.text
    problems = r.json()["error"]["problems"]
    assert [p["code"] for p in problems] == ["nul_character"]
    assert problems[0]["field"] == ".".join(path) or problems[0]["field"] == path[0]
    assert _counts(api.database_url) == NOTHING


def test_a_nul_in_a_context_key_or_outcome_is_422(api: LiveServer) -> None:
    body = flat(*CRITICAL_DROP)
    body["context"]["bad\u0000key"] = 1
    r = api.client.post("/api/decisions", json=body)
    assert (r.status_code, r.json()["error"]["problems"][0]["code"]) == (422, "nul_character")
    stored = api.client.post("/api/decisions", json=flat(*CRITICAL_DROP)).json()
    before = _counts(api.database_url)
    for outcome in ({"outcome": "do\u0000ne"}, {"details": {"k": ["x\u0000"]}}):
        r = api.client.post(f"/api/decisions/{stored['decision_id']}/outcome", json=outcome)
        assert r.status_code == 422, r.text
    assert _counts(api.database_url) == before


@pytest.mark.parametrize(
    "raw",
    [
        b'{"context": {"risk_level": "\\udfff"}}',
        b'{"context": {"\\ud800": 1}}',
        b'{"actor": "x\\ud83d"}',
    ],
    ids=["context-value", "context-key", "actor"],
)
def test_a_lone_surrogate_is_422_and_stores_nothing(api: LiveServer, raw: bytes) -> None:
    body = flat(*CRITICAL_DROP)
    patch = json.loads(raw)
    for key, value in patch.items():
        body[key] = {**body[key], **value} if isinstance(value, dict) else value
    r = _post_raw(api, "/api/decisions", json.dumps(body).encode())  # json.dumps keeps the escape
    assert r.status_code == 422, r.text
    assert r.json()["error"]["problems"][0]["code"] == "surrogate"
    stored = api.client.post("/api/decisions", json=flat(*CRITICAL_DROP)).json()
    details = _post_raw(api, f"/api/decisions/{stored['decision_id']}/outcome", b'{"details": {"d": "\\udfff"}}')
    assert details.status_code == 422, details.text
    assert _counts(api.database_url)[:3] == (1, 1, 2)


def test_string_bounds_are_in_bytes(api: LiveServer) -> None:
    emoji = "\U0001f600"  # four bytes in UTF-8
    too_long = api.client.post("/api/decisions", json={**flat(*CRITICAL_DROP), "target": emoji * 2048})
    assert too_long.status_code == 422, too_long.text
    assert too_long.json()["error"]["problems"][0] == {
        "field": "target",
        "code": "too_long",
        "message": "target: must be at most 2048 bytes in UTF-8",
    }
    fits = api.client.post("/api/decisions", json={**flat(*CRITICAL_DROP), "target": emoji * 512})
    assert fits.status_code == 201, fits.text
    assert _counts(api.database_url)[0] == 1


# -- attribution: malformed is answered like unknown (§3.1) ---------------------------------------------------------

MALFORMED_ATTRIBUTION = [
    ("organization_id", 5),
    ("domain_name", "d" * 201),
    ("stage", 1),
    ("intent", "drop\u0000table"),
    ("organization_id", "550e8400-e29b-41d4-a716-44665544\udfff"),
]


@pytest.mark.parametrize(
    ("field", "value"), MALFORMED_ATTRIBUTION, ids=["org-5", "domain-201", "stage-1", "nul", "sur"]
)
def test_malformed_attribution_gets_observe_and_a_safe_rejection_row(api: LiveServer, field: str, value: Any) -> None:
    body = {**flat(*CRITICAL_DROP), field: value}
    r = _post_raw(api, "/api/decisions", json.dumps(body).encode())
    assert r.status_code == 422, r.text
    answer = r.json()
    assert answer["verdict"] == "OBSERVE"
    assert answer["decision_id"] == body["decision_id"]
    assert answer["error"]["code"] == "attribution"
    assert any(p["field"] == field for p in answer["error"]["problems"])
    assert _counts(api.database_url) == (0, 0, 0, 1)
    [row] = _rejections(api)
    assert row["verdict"] == "OBSERVE" and row["decision_id"] == body["decision_id"]
    stored = row["domain" if field == "domain_name" else field]
    assert stored is not None and "\x00" not in stored
    stored.encode()  # no lone surrogate either: it was stored, and it reads back as valid UTF-8
    assert any(p["field"] == field for p in row["problems"])


def test_contradictory_attribution_is_observe_and_recorded_too(api: LiveServer) -> None:
    body = {**flat(*CRITICAL_DROP), "domain": "hr"}  # domain_name says config-management
    r = api.client.post("/api/decisions", json=body)
    assert (r.status_code, r.json()["verdict"]) == (422, "OBSERVE")
    assert _counts(api.database_url) == (0, 0, 0, 1)


# -- parameters ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/decisions?intent=a%00b",
        "/api/decisions?actor=a%00b",
        "/api/verdicts?target=%00",
        "/api/specs/a%00b",
        "/api/specs?domain=a%00b",
        "/?intent=a%00b",
        "/decisions/a%00b",
        "/api/decisions?a%00b=1",
    ],
)
def test_a_nul_in_a_query_or_path_parameter_is_a_clear_4xx(api: LiveServer, url: str) -> None:
    r = api.client.get(url)
    assert r.status_code == 422, r.text
    [problem] = r.json()["error"]["problems"]
    assert problem["code"] == "nul_character"


@pytest.mark.parametrize(
    "cursor",
    [
        orjson.dumps(["2026-01-01T00:00:00+00:00", "550e8400-e29b-41d4-a716-446655440000", "someday"]),
        orjson.dumps(["2026-01-01T00:00:00", "550e8400-e29b-41d4-a716-446655440000", None]),
        orjson.dumps([5, "550e8400-e29b-41d4-a716-446655440000", None]),
        b"not json",
    ],
    ids=["stage", "naive", "number", "garbage"],
)
def test_a_forged_cursor_is_400(api: LiveServer, cursor: bytes) -> None:
    import base64

    text = base64.urlsafe_b64encode(cursor).decode().rstrip("=")
    for path in ("/api/decisions", "/api/verdicts"):
        r = api.client.get(path, params={"cursor": text})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["problems"][0]["field"] == "cursor"


# -- timestamps (§3a) ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp",
    [
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:00:00-14:00",
        "9999-12-31T00:00:00Z",
        "1969-12-31T23:59:59Z",
        1700000000,
        1700000000.5,
        "1700000000",
        "2026-11-24T10:00:00",
        True,
    ],
)
def test_a_timestamp_outside_the_range_or_not_rfc3339_is_422(api: LiveServer, timestamp: Any) -> None:
    r = api.client.post("/api/decisions", json={**flat(*CRITICAL_DROP), "timestamp": timestamp})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["problems"][0]["field"] == "timestamp"
    assert _counts(api.database_url) == NOTHING
    assert api.client.get("/api/decisions").status_code == 200


def test_a_timestamp_is_stored_and_evaluated_in_utc(api: LiveServer) -> None:
    body = {**flat(*CRITICAL_DROP), "timestamp": "2026-11-24T12:00:00+02:00"}
    assert api.client.post("/api/decisions", json=body).status_code == 201
    last = {**flat(*CRITICAL_DROP), "timestamp": "9999-12-30T23:59:59+00:00"}
    assert api.client.post("/api/decisions", json=last).status_code == 201
    with psycopg.connect(api.database_url) as conn:
        stored = scalar(
            conn,
            "SELECT to_char(\"timestamp\" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM mandate.decision_events "
            "WHERE decision_id = %s",
            [body["decision_id"]],
        )
    assert stored == "2026-11-24 10:00"
    detail = api.client.get(f"/api/decisions/{body['decision_id']}").json()
    assert detail["timestamp"].startswith("2026-11-24T10:00:00")
    for path in ("/api/decisions", "/api/verdicts", f"/api/decisions/{last['decision_id']}/replay", "/"):
        assert api.client.get(path).status_code == 200, path


@pytest.mark.parametrize(
    "since", ["1700000000", "2026-01-01T00:00:00", "10000-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00"]
)
def test_list_time_filters_follow_the_same_rules(api: LiveServer, since: str) -> None:
    r = api.client.get("/api/decisions", params={"since": since})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["problems"][0]["field"] == "since"


# -- bodies ----------------------------------------------------------------------------------------------------------


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    head = b'{"actor": "a", "target": "t", "unstructured_context": "'
    yield head
    sent = len(head)
    while sent < total:
        yield b"x" * size
        sent += size
    yield b'"}'


@pytest.mark.parametrize("megabytes", [1, 10])
def test_a_chunked_body_over_the_limit_is_413_while_reading(api: LiveServer, megabytes: int) -> None:
    r = api.client.post(
        "/api/decisions", content=_chunks(megabytes * 1024 * 1024), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "too_large"
    assert _counts(api.database_url) == NOTHING
    assert api.client.get("/api/health").status_code == 200


def test_a_declared_length_over_the_limit_is_413_before_reading(api: LiveServer) -> None:
    host, port = api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(
            b"POST /api/decisions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 999999999\r\n\r\n{"
        )
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
def test_a_body_not_sent_as_json_is_415(api: LiveServer, content_type: str) -> None:
    raw = json.dumps(flat(*CRITICAL_DROP)).encode()
    r = _post_raw(api, "/api/decisions", raw, content_type)
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_media_type"
    assert _post_raw(api, "/api/decisions", raw, "application/json; charset=utf-8").status_code == 201


@pytest.mark.parametrize("raw", [b"{", b"", b"not json", b'{"actor": "a",}', b"\xff\xfe{}"])
def test_a_body_that_is_not_json_is_400(api: LiveServer, raw: bytes) -> None:
    r = _post_raw(api, "/api/decisions", raw)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "malformed_body"


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b"5",
        b'"text"',
        b"null",
        b'{"actor": 5, "target": "t"}',
        b'{"actor": "a", "target": "t", "context": {"n": NaN}}',
    ],
)
def test_json_that_breaks_the_schema_is_422(api: LiveServer, raw: bytes) -> None:
    r = _post_raw(api, "/api/decisions", raw)
    assert r.status_code == 422, r.text
    assert _counts(api.database_url)[:3] == (0, 0, 0)


def test_a_405_carries_allow_with_every_method_of_the_path(api: LiveServer) -> None:
    r = api.client.delete("/api/decisions")
    assert r.status_code == 405
    assert set(r.headers["allow"].split(", ")) >= {"GET", "POST"}
    r = api.client.put("/api/health")
    assert (r.status_code, r.headers["allow"]) == (405, "GET")


def test_a_deep_document_is_422(api: LiveServer) -> None:
    deep: Any = 1
    for _ in range(300):
        deep = {"k": deep}
    r = api.client.post("/api/decisions", json={**flat(*CRITICAL_DROP), "context": {"x": deep}})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["problems"][0]["code"] == "too_deep"


# -- the contract --------------------------------------------------------------------------------------------------


def test_the_openapi_document_states_every_response_model_and_status(api: LiveServer) -> None:
    spec = api.client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            responses = op["responses"]
            assert "503" in responses, (method, path)
            if op.get("parameters") or op.get("requestBody"):
                assert {"400", "422"} <= set(responses), (method, path)
            for status, response in responses.items():
                schema = response["content"]["application/json"]["schema"]
                assert schema.get("$ref") or schema.get("type") == "object", (method, path, status)
    decision = spec["paths"]["/api/decisions"]["post"]["responses"]
    assert {"200", "201", "400", "409", "413", "415", "422", "503"} <= set(decision)
    assert decision["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/DecisionResult")
    assert decision["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert "404" in spec["paths"]["/api/decisions/{decision_id}"]["get"]["responses"]


def test_the_organization_is_still_found_when_omitted(api: LiveServer) -> None:
    r = api.client.get("/api/decisions", params={"organization_id": ORG})
    assert r.status_code == 200


# -- database errors by SQLSTATE -------------------------------------------------------------------------------------


def _error(conn: psycopg.Connection[Any], statement: str) -> psycopg.Error:
    try:
        conn.execute(statement)
    except psycopg.Error as exc:
        return exc
    raise AssertionError(f"{statement} did not fail")


def test_database_errors_map_to_statuses_by_sqlstate_class(db_url: str) -> None:
    big = "".join(chr(0x1F000 + i) for i in range(3000))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE t (k text PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES ('a')")
        errors = {
            "22012": _error(conn, "SELECT 1/0"),
            "23505": _error(conn, "INSERT INTO t VALUES ('a')"),
            "54000": _error(conn, f"INSERT INTO t VALUES ('{big}')"),
            "57014": _error(conn, "SET statement_timeout = 10; SELECT pg_sleep(1)"),
            "42P01": _error(conn, "SELECT * FROM no_such_table"),
        }
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        psycopg.connect(f"postgresql://nobody@127.0.0.1:{port}/x?connect_timeout=1")
    except psycopg.OperationalError as exc:
        lost = exc
    assert {state: exc.sqlstate for state, exc in errors.items()} == {state: state for state in errors}
    assert isinstance(errors["54000"], psycopg.OperationalError)  # an OperationalError, yet not a lost connection
    statuses = {state: sqlstate_status(exc) for state, exc in errors.items()}
    assert statuses == {"22012": 422, "23505": 409, "54000": 422, "57014": 503, "42P01": 500}
    assert (lost.sqlstate, sqlstate_status(lost)) == (None, 503)
    assert not _connection_lost(errors["54000"]) and _connection_lost(lost)
