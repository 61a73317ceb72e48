"""`POST /api/decisions/batch` on a real server and database: one answer per decision, in order, each what
`POST /api/decisions` would have answered for it alone; each decision atomic and idempotent on its own; a bad one
fails alone; the batch's limits."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg

from tests.helpers import scalar
from tests.web.conftest import LiveServer, bearer, issue_token
from tests.web.test_api import CRITICAL_DROP, LARGE_WRITE, ORG, _counts, api, flat

__all__ = ["api"]  # the fixture, imported for the tests below
BATCH = "/api/decisions/batch"


def test_each_decision_is_answered_in_order_as_alone_and_a_bad_one_fails_alone(api: LiveServer) -> None:
    stored = flat(*CRITICAL_DROP)
    first = api.client.post("/api/decisions", json=stored)
    assert first.status_code == 201, first.text
    conflicting = {**stored, "target": "production.orders"}
    bad_signal = flat(*LARGE_WRITE)
    bad_signal["context"] = {"content_length": "large", "content_type": "yaml"}
    no_domain = {k: v for k, v in flat(*LARGE_WRITE).items() if k != "domain_name"}
    no_domain["scope"] = {k: v for k, v in no_domain["scope"].items() if k != "domain_name"}
    unknown_field = {**flat(*LARGE_WRITE), "colour": "red"}
    new = [flat(*LARGE_WRITE), flat(*CRITICAL_DROP)]
    items: list[Any] = [new[0], stored, conflicting, bad_signal, no_domain, "not a decision", unknown_field, new[1]]
    before = _counts(api.database_url)

    r = api.client.post(BATCH, json={"decisions": items})

    assert r.status_code == 200, r.text
    body = r.json()
    statuses = [item["status"] for item in body["results"]]
    assert statuses == [201, 200, 409, 422, 422, 422, 422, 201]
    results = body["results"]
    assert (results[0]["verdict"], results[0]["decision_id"]) == ("PAUSE", new[0]["decision_id"])
    assert results[0]["approval_request"]["approval_id"] == results[0]["verdict_id"]  # as alone: with its request
    assert results[1]["idempotent_replay"] is True and results[1]["verdict_id"] == first.json()["verdict_id"]
    assert results[2]["error"]["code"] == "conflict"
    assert results[3]["error"]["code"] == "invalid_signals"
    assert results[4]["verdict"] == "OBSERVE" and results[4]["error"]["code"] == "attribution"  # §3.1
    assert results[5]["error"]["problems"][0]["code"] == "not_an_object"
    assert results[6]["error"]["problems"][0] == {
        "field": "colour",
        "code": "extra_forbidden",
        "message": "colour: unknown field",
    }
    assert (results[7]["verdict"], results[7]["decision_id"]) == ("BLOCK", new[1]["decision_id"])
    assert (body["stored"], body["failed"]) == (2, 5)
    # Exactly the two new decisions were stored, each whole; the attribution refusal is in the rejection log.
    after = _counts(api.database_url)
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2], after[3] - before[3]) == (2, 2, 4, 1)
    # The same batch again: nothing new, every stored decision answers its stored verdict.
    again = api.client.post(BATCH, json={"decisions": items}).json()
    assert [item["status"] for item in again["results"]] == [200, 200, 409, 422, 422, 422, 422, 200]
    assert again["results"][0]["verdict_id"] == results[0]["verdict_id"]
    assert _counts(api.database_url)[:3] == after[:3]


def test_a_thousand_decisions_in_one_request_are_all_stored(api: LiveServer) -> None:
    items = [{**flat(*LARGE_WRITE), "target": f"/data/config/{n}.yaml"} for n in range(1000)]
    r = api.client.post(BATCH, json={"decisions": items}, timeout=120)
    assert r.status_code == 200, r.text[:300]
    assert r.json()["stored"] == 1000 and {i["verdict"] for i in r.json()["results"]} == {"PAUSE"}
    ids = [uuid.UUID(i["decision_id"]) for i in items]
    with psycopg.connect(api.database_url) as conn:
        stored = scalar(conn, "SELECT count(*) FROM mandate.decision_events WHERE decision_id = ANY(%s)", [ids])
        requests = scalar(conn, "SELECT count(*) FROM mandate.approval_requests WHERE decision_id = ANY(%s)", [ids])
    assert (stored, requests) == (1000, 1000)


def test_the_batch_limits(api: LiveServer) -> None:
    for body in ({"decisions": []}, {}, {"decisions": [flat(*LARGE_WRITE)] * 1001}, {"decisions": {}}):
        r = api.client.post(BATCH, json=body)
        assert r.status_code == 422, (str(body)[:80], r.text[:200])
        assert r.json()["error"]["code"] == "invalid_request"
    huge = '{"decisions": [' + ",".join(['{"intent": "' + "x" * 1_000_000 + '"}'] * 17) + "]}"
    r = api.client.post(BATCH, content=huge, headers={"content-type": "application/json"})
    assert r.status_code == 413
    # The single route keeps its own, smaller limit.
    one = api.client.post("/api/decisions", content='{"intent": "' + "x" * 300_000 + '"}',
                          headers={"content-type": "application/json"})  # fmt: skip
    assert one.status_code == 413
    assert api.client.post(BATCH, content=b"not json", headers={"content-type": "application/json"}).status_code == 400


def test_a_decision_outside_the_tokens_domains_fails_alone(api: LiveServer) -> None:
    agent = issue_token(api.database_url, organization_id=ORG, role="agent", domains=frozenset({"config-management"}))
    theirs = flat("issue_refund", "pre_commit", "a", "t", {}, "chat-api", "chatbot-v3", domain="customer-support")
    mine = flat(*LARGE_WRITE)
    with httpx.Client(base_url=api.url, timeout=10, headers=bearer(agent)) as c:
        r = c.post(BATCH, json={"decisions": [theirs, mine]})
        reader = issue_token(api.database_url, organization_id=ORG, role="reader")
        refused = c.post(BATCH, json={"decisions": [mine]}, headers=bearer(reader))
    assert r.status_code == 200
    assert [i["status"] for i in r.json()["results"]] == [403, 201]
    assert r.json()["results"][0]["error"]["code"] == "forbidden"
    assert refused.status_code == 403  # a reader may not send decisions at all
