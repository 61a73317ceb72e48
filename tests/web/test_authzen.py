"""The AuthZEN Authorization API 1.0 on a real server and database (demo governance applied).

The request and response shapes are written from the specification's text: an Access Evaluation request is an
object with `subject` (`type`, `id`, optional `properties`), `action` (`name`, optional `properties`), `resource`
(`type`, `id`, optional `properties`) and an optional `context`; its response is `{"decision": <boolean>}` with an
optional `context`; a decision — permitted or not — is answered with status 200. An Access Evaluations request
may carry the same four keys as defaults and an `evaluations` array whose items replace them, with
`options.evaluations_semantic` one of `execute_all` (default), `deny_on_first_deny`, `permit_on_first_permit`;
its response is `{"evaluations": [<Access Evaluation Response>, …]}` in request order. A request identifier sent
in `X-Request-ID` comes back in the same header.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tests.helpers import scalar
from tests.web.conftest import LiveServer, bearer, issue_token, serving

ORG = "550e8400-e29b-41d4-a716-446655440000"
EVALUATION = "/access/v1/evaluation"
EVALUATIONS = "/access/v1/evaluations"
DROP_SCOPE = {"service": "db-admin-tool", "environment": "production"}


@pytest.fixture
def api(db_url: str) -> Iterator[LiveServer]:
    with serving(db_url, organization_id=ORG) as server:
        yield server


def drop(risk: str, backup_first: bool, reversible: bool, **context: Any) -> dict[str, Any]:
    """An Access Evaluation request for a table drop by the agent `pause-escalation-agent`."""
    return {
        "subject": {"type": "agent", "id": "pause-escalation-agent"},
        "action": {"name": "database.drop_table", "properties": {"stage": "pre_commit"}},
        "resource": {"type": "table", "id": "production.users"},
        "context": {
            "domain": "config-management",
            "scope": DROP_SCOPE,
            "signals": {"risk_level": risk, "backup_first": backup_first, "reversible": reversible},
            **context,
        },
    }


BLOCKED = ("critical", False, False)
PAUSED = ("critical", True, False)
ALLOWED = ("low", True, True)


def stored(db_url: str, decision_id: str) -> dict[str, Any]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            """SELECT d.actor, d.target, d.intent, d.stage::text, d.scope, d.context, d.token_id, v.verdict::text
               FROM mandate.decision_events d JOIN mandate.verdict_events v USING (decision_id, stage)
               WHERE d.decision_id = %s""",
            (decision_id,),
        ).fetchone()
    assert row is not None, f"decision {decision_id} was not stored"
    keys = ("actor", "target", "intent", "stage", "scope", "context", "token_id", "verdict")
    return dict(zip(keys, row, strict=True))


def count(db_url: str, table: str) -> int:
    with psycopg.connect(db_url) as conn:
        return int(scalar(conn, f"SELECT count(*) FROM mandate.{table}"))


# -- Access Evaluation --------------------------------------------------------------------------------------------


def test_a_block_is_decision_false_with_the_verdict_sentence_and_decision_id_stored_as_a_decision(
    api: LiveServer,
) -> None:
    r = api.client.post(EVALUATION, json=drop(*BLOCKED))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"] is False
    ctx = body["context"]
    assert ctx["verdict"] == "BLOCK"
    assert ctx["summary"].startswith("BLOCK by policy-block-unbackedup-drops-v1")
    assert ctx["reason"] == "policy"
    row = stored(api.database_url, ctx["decision_id"])
    assert row["verdict"] == "BLOCK"
    assert row["actor"] == "pause-escalation-agent"
    assert row["target"] == "production.users"
    assert row["intent"] == "database.drop_table"
    assert row["stage"] == "pre_commit"
    assert row["scope"] == {**DROP_SCOPE, "agent": "pause-escalation-agent"}  # subject type agent → scope.agent
    assert row["context"] == {"risk_level": "critical", "backup_first": False, "reversible": False}
    assert row["token_id"] is not None  # the token that asked, as on POST /api/decisions


def test_only_allow_is_decision_true(api: LiveServer) -> None:
    allowed = api.client.post(EVALUATION, json=drop(*ALLOWED)).json()
    paused = api.client.post(EVALUATION, json=drop(*PAUSED)).json()
    assert allowed["decision"] is True and allowed["context"]["verdict"] == "ALLOW"
    assert paused["decision"] is False and paused["context"]["verdict"] == "PAUSE"
    # No approval ids exist yet: a PAUSE is resolved under its decision id and verdict id.
    assert paused["context"]["pause"]["requires"] == ["dba-approval", "compliance-review"]
    assert uuid.UUID(paused["context"]["verdict_id"])
    assert stored(api.database_url, paused["context"]["decision_id"])["verdict"] == "PAUSE"


def test_the_same_decision_id_is_idempotent_and_a_different_body_conflicts(api: LiveServer) -> None:
    decision_id = str(uuid.uuid4())
    first = api.client.post(EVALUATION, json=drop(*BLOCKED, decision_id=decision_id))
    again = api.client.post(EVALUATION, json=drop(*BLOCKED, decision_id=decision_id))
    assert first.status_code == again.status_code == 200
    assert first.json()["context"]["idempotent_replay"] is False
    assert again.json()["context"]["idempotent_replay"] is True
    assert again.json()["context"]["verdict_id"] == first.json()["context"]["verdict_id"]
    other = api.client.post(EVALUATION, json=drop(*ALLOWED, decision_id=decision_id))
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "conflict"
    assert count(api.database_url, "decision_events") == 1


def test_the_request_id_comes_back(api: LiveServer) -> None:
    r = api.client.post(EVALUATION, json=drop(*ALLOWED), headers={"X-Request-ID": "bfe9eb29-ab87-4ca3-be83"})
    assert r.headers["x-request-id"] == "bfe9eb29-ab87-4ca3-be83"
    refused = api.client.post(EVALUATION, content=b"{", headers={"X-Request-ID": "req-7"})
    assert refused.status_code == 400 and refused.headers["x-request-id"] == "req-7"


def test_the_time_in_context_is_the_decision_timestamp(api: LiveServer) -> None:
    body = drop(*PAUSED, time="2026-11-24T10:00:00+02:00")
    ctx = api.client.post(EVALUATION, json=body).json()["context"]
    assert ctx["pause"]["expires_at"] == "2026-11-24T10:00:00+00:00"  # 08:00Z + 120 minutes


# -- refusals ------------------------------------------------------------------------------------------------------


def test_the_specifications_minimal_request_without_a_domain_is_an_attribution_rejection(api: LiveServer) -> None:
    # The shape of the specification's first example: a user reading an account, with a time in the context.
    r = api.client.post(
        EVALUATION,
        json={
            "subject": {"type": "user", "id": "alice@acmecorp.com"},
            "resource": {"type": "account", "id": "123"},
            "action": {"name": "can_read", "properties": {"method": "GET"}},
            "context": {"time": "1985-10-26T01:22:00-07:00"},
        },
    )
    assert r.status_code == 400
    body = r.json()
    assert body["verdict"] == "OBSERVE"
    assert [p["field"] for p in body["error"]["problems"]] == ["domain"]
    assert count(api.database_url, "decision_rejections") == 1
    assert count(api.database_url, "decision_events") == 0


def test_invalid_signals_are_400_and_nothing_is_stored(api: LiveServer) -> None:
    r = api.client.post(EVALUATION, json=drop("apocalyptic", False, False))
    assert r.status_code == 400
    assert r.json()["error"]["problems"][0]["field"] == "context.risk_level"
    assert count(api.database_url, "decision_events") == 0


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"not json", "body"),
        (b'{"subject": {"type": "agent", "id": "a"}, "action": {"name": "x"}}', "resource"),
        (b'{"subject": {"type": "agent"}, "action": {"name": "x"}, "resource": {"type": "t", "id": "r"}}', "subject.id"),
        (b'{"subject": {"type": "agent", "id": "a"}, "action": {"name": "x"}, "resource": {"type": "t", "id": "r"},'
         b' "context": {"colour": "red"}}', "context.colour"),
        (b'{"subject": {"type": "agent", "id": "a\\u0000"}, "action": {"name": "x"}, "resource": {"type": "t", "id":'
         b' "r"}}', "subject.id"),
    ],
)  # fmt: skip
def test_a_malformed_request_is_400_naming_the_field(api: LiveServer, content: bytes, field: str) -> None:
    r = api.client.post(EVALUATION, content=content, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert field in [p["field"] for p in r.json()["error"]["problems"]]
    assert count(api.database_url, "decision_events") == 0


def test_access_rules_are_those_of_post_api_decisions(api: LiveServer) -> None:
    anonymous = httpx.post(api.url + EVALUATION, json=drop(*ALLOWED), timeout=10)
    assert anonymous.status_code == 401
    other_domain = issue_token(api.database_url, organization_id=ORG, role="agent", domains=frozenset({"hr"}))
    r = api.client.post(EVALUATION, json=drop(*ALLOWED), headers=bearer(other_domain))
    assert r.status_code == 403
    reader = issue_token(api.database_url, organization_id=ORG, role="reader")
    assert api.client.post(EVALUATION, json=drop(*ALLOWED), headers=bearer(reader)).status_code == 403
    agent = issue_token(api.database_url, organization_id=ORG, role="agent", domains=frozenset({"config-management"}))
    allowed = api.client.post(EVALUATION, json=drop(*ALLOWED), headers=bearer(agent))
    assert allowed.status_code == 200 and allowed.json()["decision"] is True
    assert count(api.database_url, "decision_events") == 1


def test_a_form_body_is_refused_as_on_the_decision_api(api: LiveServer) -> None:
    r = api.client.post(EVALUATION, content=b"a=b", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415


# -- Access Evaluations --------------------------------------------------------------------------------------------


def batch(*items: tuple[str, bool, bool], semantic: str | None = None) -> dict[str, Any]:
    """Defaults at the top, one item per (risk, backup_first, reversible) replacing only the context."""
    base = drop(*ALLOWED)
    body: dict[str, Any] = {
        "subject": base["subject"],
        "action": base["action"],
        "resource": base["resource"],
        "evaluations": [{"context": drop(*item)["context"]} for item in items],
    }
    if semantic is not None:
        body["options"] = {"evaluations_semantic": semantic}
    return body


def verdicts(body: dict[str, Any]) -> list[str]:
    return [e["context"]["verdict"] for e in body["evaluations"]]


def test_execute_all_answers_every_item_in_order_and_stores_each(api: LiveServer) -> None:
    r = api.client.post(EVALUATIONS, json=batch(ALLOWED, BLOCKED, PAUSED))
    assert r.status_code == 200, r.text
    body = r.json()
    assert [e["decision"] for e in body["evaluations"]] == [True, False, False]
    assert verdicts(body) == ["ALLOW", "BLOCK", "PAUSE"]
    for e in body["evaluations"]:
        assert stored(api.database_url, e["context"]["decision_id"])["verdict"] == e["context"]["verdict"]
    assert count(api.database_url, "decision_events") == 3


def test_an_item_that_cannot_be_evaluated_answers_in_its_place(api: LiveServer) -> None:
    r = api.client.post(EVALUATIONS, json=batch(ALLOWED, ("apocalyptic", True, True), BLOCKED))
    body = r.json()
    assert r.status_code == 200
    assert [e["decision"] for e in body["evaluations"]] == [True, False, False]
    error = body["evaluations"][1]["context"]["error"]
    assert error["status"] == 400 and error["code"] == "invalid_signals"
    assert body["evaluations"][2]["context"]["verdict"] == "BLOCK"
    assert count(api.database_url, "decision_events") == 2


def test_deny_on_first_deny_stops_after_the_first_false(api: LiveServer) -> None:
    body = api.client.post(EVALUATIONS, json=batch(ALLOWED, PAUSED, ALLOWED, semantic="deny_on_first_deny")).json()
    assert verdicts(body) == ["ALLOW", "PAUSE"]
    assert count(api.database_url, "decision_events") == 2


def test_permit_on_first_permit_stops_after_the_first_true(api: LiveServer) -> None:
    body = api.client.post(EVALUATIONS, json=batch(BLOCKED, ALLOWED, BLOCKED, semantic="permit_on_first_permit")).json()
    assert verdicts(body) == ["BLOCK", "ALLOW"]
    assert count(api.database_url, "decision_events") == 2


def test_evaluations_without_items_is_one_access_evaluation(api: LiveServer) -> None:
    body = api.client.post(EVALUATIONS, json=drop(*BLOCKED)).json()
    assert body["decision"] is False and body["context"]["verdict"] == "BLOCK"


def test_an_unknown_semantic_is_400(api: LiveServer) -> None:
    r = api.client.post(EVALUATIONS, json=batch(ALLOWED, semantic="first_come_first_served"))
    assert r.status_code == 400
    assert r.json()["error"]["problems"][0]["field"] == "options.evaluations_semantic"
    assert count(api.database_url, "decision_events") == 0


def test_every_authzen_route_is_documented_with_an_example() -> None:
    from pathlib import Path

    from mandate.web.app import create_app

    doc = (Path(__file__).resolve().parents[2] / "docs" / "integrations.md").read_text()
    paths = [p for p in create_app("postgresql://unused@127.0.0.1:1/unused").openapi()["paths"] if "/access/" in p]
    assert sorted(paths) == [EVALUATION, EVALUATIONS]
    for path in paths:
        section = doc.split(f"### `POST {path}`", 1)[1].split("\n### ", 1)[0]
        assert "curl " in section and "| AuthZEN | Mandate |" in doc
