"""The HTTP API on a real server and database, with the demo governance applied."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from mandate.apply import apply_bundle
from mandate.governance.bundle import load_demo_bundle
from tests.helpers import scalar
from tests.web.conftest import LiveServer, bearer, issue_token, serving, start_server

ORG = "550e8400-e29b-41d4-a716-446655440000"


def flat(
    intent: str,
    stage: str,
    actor: str,
    target: str,
    context: dict[str, Any],
    service: str,
    agent: str,
    domain: str = "config-management",
    **extra: Any,
) -> dict[str, Any]:
    """A decision in the original project's flat body shape (`domain_name`)."""
    return {
        "decision_id": str(uuid.uuid4()),
        "organization_id": ORG,
        "domain_name": domain,
        "intent": intent,
        "stage": stage,
        "actor": actor,
        "target": target,
        "context": copy.deepcopy(context),
        "scope": {
            "organization_id": ORG,
            "domain_name": domain,
            "service": service,
            "agent": agent,
            "environment": "production",
        },
        "timestamp": "2026-11-24T10:00:00Z",
        **extra,
    }


LARGE_WRITE = (
    "file.write",
    "pre_commit",
    "pre-commit-agent",
    "/data/config/production.yaml",
    {"content_length": 2500000, "content_type": "yaml"},
    "config-writer",
    "pre-commit-agent",
)
CRITICAL_DROP = (
    "database.drop_table",
    "pre_commit",
    "pause-escalation-agent",
    "production.users",
    {"cascade": True, "backup_first": False, "risk_level": "critical", "reversible": False},
    "db-admin-tool",
    "pause-escalation-agent",
)
OBSERVED = [
    ("user.login", {"user_id": "u-1", "ip_address": "10.0.0.1", "auth_method": "password", "execution_success": True}),
    ("data.export", {"format": "csv", "record_count": 5000, "includes_pii": True, "execution_success": True}),
    ("config.update", {"key": "max_connections", "old_value": "100", "new_value": "200", "execution_success": True}),
]


@pytest.fixture
def api(db_url: str) -> Iterator[LiveServer]:
    with serving(db_url, organization_id=ORG) as server:
        yield server
    # Whatever a test sent, no decision stage was ever stored without its verdict and both timeline entries.
    with psycopg.connect(db_url) as conn:
        incomplete = scalar(
            conn,
            """SELECT count(*) FROM mandate.decision_events d
               WHERE NOT EXISTS (SELECT 1 FROM mandate.verdict_events v
                                 WHERE v.decision_id = d.decision_id AND v.stage = d.stage)
                  OR (SELECT count(*) FROM mandate.audit_timeline_entries t
                      WHERE t.decision_id = d.decision_id AND t.stage = d.stage) < 2""",
        )
    assert incomplete == 0


def _counts(db_url: str) -> tuple[int, int, int, int]:
    with psycopg.connect(db_url) as conn:
        return tuple(  # type: ignore[return-value]  # four scalars
            scalar(conn, f"SELECT count(*) FROM mandate.{t}")
            for t in ("decision_events", "verdict_events", "audit_timeline_entries", "decision_rejections")
        )


# -- the original project's example requests -------------------------------------------------------------------


def test_the_large_production_yaml_write_pauses(api: LiveServer) -> None:
    r = api.client.post("/api/v1/decisions", json=flat(*LARGE_WRITE))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["verdict"] == "PAUSE"
    assert body["winning_policy_id"] == "policy-pause-large-files-v1"
    assert body["pause"]["requires"] == ["compliance-review"]
    assert body["pause"]["expires_at"] == "2026-11-24T11:00:00+00:00"


def test_the_critical_drop_without_backup_blocks_naming_both_policies_and_the_owner(api: LiveServer) -> None:
    r = api.client.post("/api/v1/decisions", json=flat(*CRITICAL_DROP))
    body = r.json()
    assert (r.status_code, body["verdict"]) == (201, "BLOCK")
    assert body["matched_policy_ids"] == ["policy-block-unbackedup-drops-v1", "policy-pause-critical-db-ops-v1"]
    assert body["scope"]["owning_team"] == "dba-team"
    assert body["summary"].startswith("BLOCK by policy-block-unbackedup-drops-v1 (scope config-management.prod.")
    assert "owner dba-team): backup_first == false" in body["summary"]


@pytest.mark.parametrize(("intent", "context"), OBSERVED, ids=[o[0] for o in OBSERVED])
def test_the_observe_agents_executed_events_are_observed(api: LiveServer, intent: str, context: dict[str, Any]) -> None:
    body = flat(intent, "executed", "observe-agent", "audit-log", context, "audit-logger", "observe-agent")
    r = api.client.post("/api/v1/decisions", json=body)
    assert (r.status_code, r.json()["verdict"]) == (201, "OBSERVE")
    outcome = api.client.post(
        f"/api/v1/decisions/{body['decision_id']}/outcome", json={"outcome": "executed", "success": True}
    )
    assert outcome.status_code == 201
    timeline = api.client.get(f"/api/v1/decisions/{body['decision_id']}/timeline").json()["entries"]
    assert [e["summary"].split(":")[0] for e in timeline][-1] == "outcome reported"
    assert timeline[0]["summary"] == "decision received"


def test_replay_of_each_example_reports_identical(api: LiveServer) -> None:
    ids = []
    for scenario in (LARGE_WRITE, CRITICAL_DROP):
        body = flat(*scenario)
        assert api.client.post("/api/v1/decisions", json=body).status_code == 201
        ids.append(body["decision_id"])
    for decision_id in ids:
        replay = api.client.get(f"/api/decisions/{decision_id}/replay").json()
        assert replay["identical"] is True, replay


def test_the_refund_scenarios_through_the_observe_phase(api: LiveServer) -> None:
    def reply(text: str) -> dict[str, Any]:
        body = flat(
            "issue_refund",
            "pre_commit",
            "chatbot-v3",
            "customer:42",
            {},
            "chat-api",
            "chatbot-v3",
            domain="customer-support",
            unstructured_context=text,
        )
        r = api.client.post("/api/decisions", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    completed = reply("Your flight has completed, and I'm processing a full refund for you.")
    assert completed["verdict"] == "BLOCK"
    assert completed["winning_policy_id"] == "pol-refund-002"
    departed = reply("I've issued a refund of $250 for your flight, which departed this morning.")
    assert departed["verdict"] == "PAUSE"
    assert departed["explanation"]["observe"]["values"]["monetary_amount"] == 250
    assert reply("Your seat is 14C and boarding starts at 9:40.")["verdict"] == "ALLOW"


# -- idempotency and safe failures -------------------------------------------------------------------------------


def test_an_identical_resend_returns_the_stored_verdict_and_writes_nothing(api: LiveServer) -> None:
    body = flat(*CRITICAL_DROP)
    first = api.client.post("/api/decisions", json=body)
    before = _counts(api.database_url)
    again = api.client.post("/api/decisions", json=body)
    assert again.status_code == 200
    assert again.json()["verdict_id"] == first.json()["verdict_id"]
    assert again.json()["idempotent_replay"] is True
    assert _counts(api.database_url) == before


def test_the_same_key_with_a_different_body_is_a_conflict(api: LiveServer) -> None:
    body = flat(*CRITICAL_DROP)
    api.client.post("/api/decisions", json=body)
    before = _counts(api.database_url)
    r = api.client.post("/api/decisions", json={**body, "target": "production.orders"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "conflict"
    assert _counts(api.database_url) == before


def test_a_second_stage_of_the_same_decision_is_its_own_event(api: LiveServer) -> None:
    body = flat(*LARGE_WRITE)
    assert api.client.post("/api/decisions", json=body).status_code == 201
    proposed = {**body, "stage": "proposed"}
    r = api.client.post("/api/decisions", json=proposed)
    assert r.status_code == 201
    assert r.json()["verdict"] == "OBSERVE"  # no spec for file.write at the proposed stage: a governance gap
    assert "no active spec" in r.json()["summary"]
    stages = api.client.get(f"/api/decisions/{body['decision_id']}").json()["stages"]
    assert {s["stage"] for s in stages} == {"pre_commit", "proposed"}


def test_unknown_attribution_is_answered_observe_and_logged_as_a_rejection(api: LiveServer) -> None:
    before = _counts(api.database_url)
    body = flat(*CRITICAL_DROP, domain="no-such-domain")
    r = api.client.post("/api/v1/decisions", json=body)
    assert r.status_code == 422
    assert r.json()["verdict"] == "OBSERVE"
    assert r.json()["error"]["problems"][0]["field"] == "domain"
    after = _counts(api.database_url)
    assert after[:3] == before[:3] and after[3] == before[3] + 1


def test_no_scope_is_a_governance_gap_stored_as_observe(api: LiveServer) -> None:
    body = flat(*CRITICAL_DROP)
    body["scope"]["service"] = "someone-else"
    r = api.client.post("/api/decisions", json=body)
    assert (r.status_code, r.json()["verdict"]) == (201, "OBSERVE")
    assert "no scope holds authority here" in r.json()["summary"]


def test_invalid_signals_list_every_problem_and_store_nothing(api: LiveServer) -> None:
    before = _counts(api.database_url)
    body = flat(*CRITICAL_DROP)
    body["context"] = {"risk_level": "apocalyptic", "reversible": "no"}
    r = api.client.post("/api/decisions", json=body)
    assert r.status_code == 422
    fields = {p["field"] for p in r.json()["error"]["problems"]}
    assert fields == {"context.risk_level", "context.reversible", "context.backup_first"}
    assert _counts(api.database_url) == before


# -- bad input: 4xx naming the field, nothing written, never a 5xx --------------------------------------------------

BAD_POSTS = [
    ("malformed JSON", b"{not json", "body"),
    ("context not an object", {"context": [1, 2]}, "context"),
    ("non-UUID decision id", {"decision_id": "12345"}, "decision_id"),
    ("unknown field", {"contxt": {}}, "contxt"),
    ("actor missing", {"actor": None}, "actor"),
    ("naive timestamp", {"timestamp": "2026-11-24T10:00:00"}, "timestamp"),
    ("bad timestamp", {"timestamp": "yesterday"}, "timestamp"),
    ("unknown stage", {"stage": "someday"}, "stage"),
    ("non-UUID organization", {"organization_id": "acme", "scope": {"service": "db-admin-tool"}}, "organization_id"),
    ("unknown scope field", {"scope": {"region": "eu"}}, "scope.region"),
    ("oversized free text", {"unstructured_context": "x" * 40_000}, "unstructured_context"),
]


@pytest.mark.parametrize(("case", "change", "field"), BAD_POSTS, ids=[c[0] for c in BAD_POSTS])
def test_bad_decision_bodies_are_refused_naming_the_field(api: LiveServer, case: str, change: Any, field: str) -> None:
    before = _counts(api.database_url)
    if isinstance(change, bytes):
        r = api.client.post("/api/decisions", content=change, headers={"content-type": "application/json"})
    else:
        body = {**flat(*CRITICAL_DROP), **change}
        body = {k: v for k, v in body.items() if v is not None}
        r = api.client.post("/api/decisions", json=body)
    assert 400 <= r.status_code < 500, r.text
    assert field in {p["field"] for p in r.json()["error"]["problems"]}, r.json()
    assert _counts(api.database_url)[:3] == before[:3]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_in_context_are_refused(api: LiveServer, number: str) -> None:
    body = flat(*CRITICAL_DROP)
    body["context"]["nested"] = {"values": [1, "__number__"]}
    raw = json.dumps(body).replace('"__number__"', number)
    before = _counts(api.database_url)
    r = api.client.post("/api/decisions", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert "context" in {p["field"] for p in r.json()["error"]["problems"]}
    assert _counts(api.database_url) == before


def test_integers_beyond_64_bits_are_refused_and_64_bit_ones_stored_exactly(api: LiveServer) -> None:
    body = flat(*CRITICAL_DROP)
    body["context"]["huge"] = 2**70
    before = _counts(api.database_url)
    r = api.client.post("/api/decisions", json=body)
    assert r.status_code == 422, r.text
    assert "context" in {p["field"] for p in r.json()["error"]["problems"]}
    assert _counts(api.database_url) == before
    body["context"]["huge"] = 2**63 - 1
    r = api.client.post("/api/decisions", json=body)
    assert r.status_code == 201, r.text
    with psycopg.connect(api.database_url) as conn:
        stored = conn.execute(
            "SELECT context->>'huge' FROM mandate.decision_events WHERE decision_id = %s", [r.json()["decision_id"]]
        ).fetchone()
    assert stored == (str(2**63 - 1),)


def test_an_oversized_body_is_refused_before_it_is_read(api: LiveServer) -> None:
    body = flat(*CRITICAL_DROP)
    body["context"]["padding"] = "x" * 300_000
    r = api.client.post("/api/decisions", json=body)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"


LIST_PATHS = ["/api/decisions", "/api/verdicts", "/api/v1/decisions", "/api/v1/verdicts"]
BAD_QUERIES = [
    ("limit=0", "limit"),
    ("limit=100000", "limit"),
    ("limit=ten", "limit"),
    ("cursor=not-a-cursor", "cursor"),
    ("since=last-week", "since"),
    ("until=2026-01-01T00:00:00", "until"),
    ("verdict=MAYBE", "verdict"),
    ("stage=later", "stage"),
    ("organization_id=acme", "organization_id"),
    ("domain=Finance%20Dept", "domain"),
    ("colour=red", "colour"),
]


@pytest.mark.parametrize("path", LIST_PATHS)
@pytest.mark.parametrize(("query", "field"), BAD_QUERIES, ids=[q[0] for q in BAD_QUERIES])
def test_bad_list_parameters_are_refused_naming_the_field(api: LiveServer, path: str, query: str, field: str) -> None:
    r = api.client.get(f"{path}?{query}")
    assert 400 <= r.status_code < 500, r.text
    assert field in {p["field"] for p in r.json()["error"]["problems"]}, r.json()


SQLISH = "x' OR '1'='1; DROP TABLE mandate.decision_events; --"


@pytest.mark.parametrize("param", ["intent", "agent", "service", "actor", "target", "domain"])
def test_sql_looking_filter_values_are_just_values(api: LiveServer, param: str) -> None:
    stored = api.client.post("/api/decisions", json=flat(*CRITICAL_DROP))
    assert stored.status_code == 201, stored.text
    r = api.client.get("/api/decisions", params={param: SQLISH})
    if param == "domain":
        assert r.status_code == 422  # not a slug
    else:
        assert r.status_code == 200 and r.json()["items"] == []
    assert _counts(api.database_url)[0] == 1


@pytest.mark.parametrize(
    "path",
    [
        "/api/decisions/not-a-uuid",
        "/api/decisions/not-a-uuid/timeline",
        "/api/decisions/not-a-uuid/verdict",
        "/api/decisions/not-a-uuid/replay",
        "/api/policy-snapshots/42/policies",
    ],
)
def test_malformed_ids_in_paths_are_422(api: LiveServer, path: str) -> None:
    r = api.client.get(path)
    assert r.status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        f"/api/decisions/{uuid.uuid4()}",
        f"/api/decisions/{uuid.uuid4()}/timeline",
        f"/api/decisions/{uuid.uuid4()}/verdict",
        f"/api/decisions/{uuid.uuid4()}/replay",
        f"/api/policy-snapshots/{uuid.uuid4()}/policies",
        "/api/specs/no-such-spec",
        "/api/nowhere",
    ],
)
def test_unknown_things_are_404(api: LiveServer, path: str) -> None:
    r = api.client.get(path)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_an_outcome_for_an_unknown_decision_is_404_and_writes_nothing(api: LiveServer) -> None:
    before = _counts(api.database_url)
    r = api.client.post(f"/api/decisions/{uuid.uuid4()}/outcome", json={"outcome": "done"})
    assert r.status_code == 404
    assert _counts(api.database_url) == before
    bad = api.client.post(f"/api/decisions/{uuid.uuid4()}/outcome", json={"outcome": 7, "extra": 1})
    assert bad.status_code == 422


def test_an_outcome_with_a_non_finite_number_is_refused(api: LiveServer) -> None:
    decision = api.client.post("/api/decisions", json=flat(*CRITICAL_DROP))
    assert decision.status_code == 201
    before = _counts(api.database_url)
    r = api.client.post(
        f"/api/decisions/{decision.json()['decision_id']}/outcome",
        content='{"outcome": "done", "details": {"rows": NaN}}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert "details" in {p["field"] for p in r.json()["error"]["problems"]}
    assert _counts(api.database_url) == before


# -- reads -------------------------------------------------------------------------------------------------------


def test_health_reports_database_and_versions(api: LiveServer) -> None:
    body = api.client.get("/api/health").json()
    assert body["status"] == "ok" and body["database"] == "reachable"
    assert body["schema_version"] == body["required_schema_version"]


def test_lists_paginate_with_a_stable_cursor_and_filter_by_domain(api: LiveServer) -> None:
    for _ in range(7):
        api.client.post("/api/decisions", json=flat(*CRITICAL_DROP))
    api.client.post(
        "/api/decisions",
        json=flat(
            "issue_refund",
            "pre_commit",
            "chatbot-v3",
            "customer:1",
            {},
            "chat-api",
            "chatbot-v3",
            domain="customer-support",
        ),
    )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, "domain": "config-management"}
        if cursor:
            params["cursor"] = cursor
        page = api.client.get("/api/decisions", params=params).json()
        seen += [i["decision_id"] for i in page["items"]]
        assert all(i["domain"] == "config-management" for i in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7
    verdicts = api.client.get("/api/verdicts", params={"domain_name": "customer-support"}).json()["items"]
    assert [v["domain"] for v in verdicts] == ["customer-support"]
    blocked = api.client.get("/api/decisions", params={"verdict": "BLOCK"}).json()["items"]
    assert len(blocked) == 7


def test_governance_reads(api: LiveServer) -> None:
    domains = api.client.get("/api/v1/domains", params={"organization_id": ORG}).json()["items"]
    assert {d["domain"] for d in domains} == {"config-management", "customer-support"}
    scopes = api.client.get("/api/scopes", params={"domain": "config-management"}).json()["items"]
    assert {s["owning_team"] for s in scopes} == {"config-team", "dba-team", "audit-team"}
    specs = api.client.get("/api/specs", params={"domain": "customer-support"}).json()["items"]
    assert {(s["version"], s["status"]) for s in specs} == {("1.0.0", "deprecated"), ("1.1.0", "active")}
    spec = api.client.get("/api/v1/specs/spec-refund-v1", params={"version": "1.0.0"}).json()
    assert spec["version"] == "1.0.0" and len(spec["versions"]) == 2
    assert api.client.get("/api/specs/spec-refund-v1", params={"version": "9"}).status_code == 404
    snapshots = api.client.get("/api/policy-snapshots", params={"domain": "customer-support"}).json()["items"]
    assert [s["version"] for s in snapshots] == [2, 1]
    policies = api.client.get(f"/api/policy-snapshots/{snapshots[0]['snapshot_id']}/policies").json()["items"]
    assert {p["id"] for p in policies} == {"pol-refund-001", "pol-refund-002"}


def test_a_domain_filter_on_a_single_decision_never_shows_another_domain(api: LiveServer) -> None:
    body = flat(*CRITICAL_DROP)
    api.client.post("/api/decisions", json=body)
    assert (
        api.client.get(f"/api/decisions/{body['decision_id']}", params={"domain": "customer-support"}).status_code
        == 404
    )
    assert (
        api.client.get(f"/api/decisions/{body['decision_id']}", params={"domain": "config-management"}).status_code
        == 200
    )


def test_openapi_and_docs_are_served(api: LiveServer) -> None:
    spec = api.client.get("/openapi.json").json()
    assert "/api/decisions" in spec["paths"]
    assert api.client.get("/docs").status_code == 200
    for public in ("/docs", "/redoc", "/openapi.json"):  # the API's documentation needs no token
        assert httpx.get(api.url + public, timeout=10).status_code == 200, public


def test_several_organizations_require_organization_id_without_authentication(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        apply_bundle(conn, load_demo_bundle())
        conn.execute("INSERT INTO mandate.organizations (name) VALUES ('second-org')")
    server, thread, url = start_server(db_url, auth=False)
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            r = client.get("/api/decisions")
            assert r.status_code == 422
            assert r.json()["error"]["code"] == "organization_required"
            assert client.get("/api/decisions", params={"organization_id": ORG}).status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_with_several_organizations_a_token_reads_its_own_by_default(api: LiveServer) -> None:
    with psycopg.connect(api.database_url, autocommit=True) as conn:
        other = scalar(conn, "INSERT INTO mandate.organizations (name) VALUES ('second-org') RETURNING organization_id")
    api.client.post("/api/decisions", json=flat(*CRITICAL_DROP)).raise_for_status()
    r = api.client.get("/api/decisions")
    assert r.status_code == 200 and {i["organization_id"] for i in r.json()["items"]} == {ORG}
    assert api.client.get("/api/decisions", params={"organization_id": str(other)}).status_code == 403
    assert [o["organization_id"] for o in api.client.get("/api/organizations").json()["items"]] == [ORG]


def test_a_decision_is_found_by_a_unique_prefix_of_its_id(api: LiveServer) -> None:
    ids = ["a25654d0-1111-4111-8111-111111111111", "a25654d0-2222-4222-8222-222222222222",
           "b7e81c3a-3333-4333-8333-333333333333"]  # fmt: skip
    for decision_id in ids:
        body = flat(*LARGE_WRITE)
        body["decision_id"] = decision_id
        assert api.client.post("/api/decisions", json=body).status_code == 201
    # Unique: a redirect to the whole id (the query kept), which answers the decision.
    r = api.client.get("/api/decisions/b7e81c", params={"domain": "config-management"})
    assert r.status_code == 307
    assert r.headers["location"] == f"/api/decisions/{ids[2]}?domain=config-management"
    assert r.json() == {"decision_id": ids[2], "location": r.headers["location"]}
    followed = api.client.get("/api/decisions/b7e81c", follow_redirects=True)
    assert (followed.status_code, followed.json()["decision_id"]) == (200, ids[2])
    assert api.client.get("/api/v1/decisions/B7E8-1C3A").headers["location"] == f"/api/v1/decisions/{ids[2]}"
    # Several: 409 listing them; none: 404; too short or not hex: 422.
    r = api.client.get("/api/decisions/a25654d0")
    assert (r.status_code, r.json()["error"]["code"]) == (409, "ambiguous_id")
    assert sorted(p["message"] for p in r.json()["error"]["problems"]) == ids[:2]
    assert api.client.get("/api/decisions/a25654d0-2").headers["location"] == f"/api/decisions/{ids[1]}"
    assert api.client.get("/api/decisions/ffffff").status_code == 404
    for bad in ("a2565", "zzzzzzzz", "a25654d0%00", "a2565\u00e9d0"):
        r = api.client.get(f"/api/decisions/{bad}")
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_request"), bad


def test_a_prefix_matches_only_decisions_the_token_may_see(api: LiveServer) -> None:
    body = flat(*LARGE_WRITE)
    body["decision_id"] = "c0ffee00-4444-4444-8444-444444444444"
    assert api.client.post("/api/decisions", json=body).status_code == 201
    other = issue_token(api.database_url, organization_id=ORG, role="reader", domains=frozenset({"customer-support"}))
    with httpx.Client(base_url=api.url, timeout=10, headers=bearer(other)) as client:
        hidden = client.get("/api/decisions/c0ffee")
        missing = client.get("/api/decisions/c0ffee11")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"


def test_the_ingestion_routes_answer_without_fastapis_dependency_machinery(
    api: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST /api/decisions and /api/decisions/batch are `web.inputs.JsonBodyRoute`s: their checks, body and
    endpoint run directly. (The role check still applies to them: test_access.py's matrix, on every route.)"""
    import fastapi.routing

    def machinery(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("FastAPI's dependency machinery ran")

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", machinery)
    single = api.client.post("/api/decisions", json=flat(*CRITICAL_DROP))
    assert single.status_code == 201, single.text
    assert single.json()["verdict"] == "BLOCK"
    batch = api.client.post("/api/v1/decisions/batch", json={"decisions": [flat(*CRITICAL_DROP), {"intent": 5}]})
    assert batch.status_code == 200, batch.text
    assert [item["status"] for item in batch.json()["results"]] == [201, 422]
    malformed = api.client.post("/api/decisions", content=b"{", headers={"content-type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed_body"
    # Every other route still goes through it: the replacement above is in effect.
    assert api.client.get("/api/decisions").status_code == 500
