"""Webhooks of approval events (docs/approvals.md, "Webhooks"): a real server posts to a real receiver on loopback.

At least once, signed (Standard Webhooks), retried with back-off, given up after the last attempt, every final
outcome on the decision's timeline; the configuration is the CLI's, never the server's to write.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

import httpx
import orjson
import psycopg
import pytest

from mandate.apply import apply_bundle
from mandate.approvals import webhook
from mandate.db import webhooks as wq
from mandate.governance.bundle import load_demo_bundle
from tests.helpers import run_cli
from tests.web.conftest import bearer, issue_token, start_server
from tests.web.test_approvals import DOMAIN, ORG, drop


@dataclass
class Receiver:
    """An HTTP endpoint on loopback that answers with `statuses` in turn (then 200) and keeps what it got."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    def wait_for(self, predicate: Callable[[list[tuple[dict[str, str], bytes]]], bool], timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.received):
            assert time.monotonic() < deadline, f"the receiver got {len(self.received)} request(s)"
            time.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(state.statuses.pop(0) if state.statuses else 200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/hooks/mandate"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@dataclass
class Served:
    url: str
    db_url: str
    agent: httpx.Client
    dba: httpx.Client
    compliance: httpx.Client


@pytest.fixture
def served(db_url: str) -> Iterator[Served]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        apply_bundle(conn, load_demo_bundle())
    server, thread, url = start_server(db_url, webhook_timing=(0.05, 0.1))
    tokens = {
        "agent": issue_token(db_url, role="agent", domains=frozenset({DOMAIN}), name="agent-a"),
        "dba": issue_token(db_url, role="approver", domains=frozenset({DOMAIN}), name="dba-alice"),
        "compliance": issue_token(db_url, role="approver", domains=frozenset({DOMAIN}), name="compliance-bob"),
    }
    clients = {k: httpx.Client(base_url=url, timeout=30, headers=bearer(v)) for k, v in tokens.items()}
    try:
        yield Served(url, db_url, **clients)
    finally:
        for c in clients.values():
            c.close()
        server.should_exit = True
        thread.join(timeout=15)


def _set(db_url: str, team: str, url: str) -> str:
    secret = webhook.new_secret()
    with psycopg.connect(db_url, autocommit=True) as conn:
        wq.set_webhook(conn, organization_id=UUID(ORG), team=team, url=url, secret=secret, created_by="tests")
    return secret


def _timeline(served: Served, decision_id: str) -> list[str]:
    entries = served.agent.get(f"/api/decisions/{decision_id}/timeline").json()["entries"]
    return [e["summary"] for e in entries if e["actor"] == "webhooks"]


def test_events_reach_the_owning_team_signed_and_retried_until_delivered(served: Served, receiver: Receiver) -> None:
    receiver.statuses = [500, 503]  # the first two attempts fail
    secret = _set(served.db_url, "dba-team", receiver.url)
    paused = served.agent.post("/api/decisions", json=drop()).json()
    approval_id = paused["approval_request"]["approval_id"]
    receiver.wait_for(lambda got: len(got) >= 3)
    attempts = receiver.received[:3]
    # The same event each time: same id (receivers drop duplicates by it), each signature valid for its body.
    assert {h["webhook-id"] for h, _ in attempts} == {approval_id}
    assert all(webhook.verify(secret, h, b) for h, b in attempts)
    assert not webhook.verify(webhook.new_secret(), *attempts[0])
    event = orjson.loads(attempts[2][1])
    assert (event["type"], event["team"]) == ("approval.requested", "dba-team")
    assert event["approval"]["approval_id"] == approval_id and event["approval"]["state"] == "pending"
    # Every attempt is recorded; the delivery is on the decision's timeline.
    with psycopg.connect(served.db_url) as conn:
        outcomes = conn.execute(
            "SELECT attempt, outcome, status FROM mandate.webhook_deliveries WHERE event_id = %s ORDER BY attempt",
            [approval_id],
        ).fetchall()
    assert outcomes == [(1, "failed", 500), (2, "failed", 503), (3, "delivered", 200)]
    assert _timeline(served, paused["decision_id"]) == [
        "approval requested delivered to the webhook of dba-team (attempt 3)"
    ]
    # A resolution is an event of its own, delivered once.
    r = served.dba.post(f"/api/approvals/{approval_id}/approve", json={"requirement": "dba-approval"})
    assert r.status_code == 201
    receiver.wait_for(lambda got: any(orjson.loads(b)["type"] == "approval.approved" for _, b in got))
    time.sleep(0.5)  # several more rounds: nothing is sent twice once delivered
    kinds = [orjson.loads(b)["type"] for _, b in receiver.received]
    assert kinds == ["approval.requested"] * 3 + ["approval.approved"]
    approved = orjson.loads(receiver.received[-1][1])
    assert approved["approval"]["requirements"][0]["by"]["name"] == "dba-alice"


def test_a_receiver_that_keeps_failing_is_given_up_and_that_is_on_the_timeline(
    served: Served, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhook, "MAX_ATTEMPTS", 3)  # the server runs in this process
    receiver.statuses = [500] * 10
    _set(served.db_url, "dba-team", receiver.url)
    paused = served.agent.post("/api/decisions", json=drop()).json()
    deadline = time.monotonic() + 15
    while not _timeline(served, paused["decision_id"]):
        assert time.monotonic() < deadline, "no final delivery outcome on the timeline"
        time.sleep(0.05)
    assert _timeline(served, paused["decision_id"]) == [
        "approval requested not delivered to the webhook of dba-team: gave up after 3 attempts"
    ]
    time.sleep(0.5)
    assert len(receiver.received) == 3  # given up: never tried again


def test_only_events_after_the_webhook_was_set_are_sent_and_removal_stops_them(
    served: Served, receiver: Receiver
) -> None:
    before = served.agent.post("/api/decisions", json=drop()).json()["approval_request"]["approval_id"]
    _set(served.db_url, "dba-team", receiver.url)
    after = served.agent.post("/api/decisions", json=drop()).json()["approval_request"]["approval_id"]
    receiver.wait_for(lambda got: len(got) >= 1)
    time.sleep(0.3)
    assert [h["webhook-id"] for h, _ in receiver.received] == [after] and before != after
    with psycopg.connect(served.db_url, autocommit=True) as conn:
        wq.set_webhook(conn, organization_id=UUID(ORG), team="dba-team", url=None, secret=None, created_by="tests")
    served.agent.post("/api/decisions", json=drop())
    time.sleep(0.5)
    assert len(receiver.received) == 1


def test_the_cli_prints_the_secret_once_and_never_lists_it(served: Served, receiver: Receiver) -> None:
    env = {"DATABASE_URL": served.db_url}
    created = run_cli("webhooks", "set", "--org", ORG, "--team", "dba-team", "--url", receiver.url, env=env)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("whsec_") and "dba-team" in created.stderr
    listed = run_cli("webhooks", "list", "--org", ORG, env={**env, "COLUMNS": "250"})
    assert listed.returncode == 0 and receiver.url in listed.stdout and secret not in listed.stdout
    bad = run_cli("webhooks", "set", "--org", ORG, "--team", "dba-team", "--url", "ftp://x", env=env)
    assert bad.returncode != 0 and "not an http(s) URL" in bad.stderr
    # The server's signature verifies with the printed secret.
    served.agent.post("/api/decisions", json=drop())
    receiver.wait_for(lambda got: len(got) >= 1)
    assert webhook.verify(secret, *receiver.received[0])
    removed = run_cli("webhooks", "remove", "--org", ORG, "--team", "dba-team", env=env)
    assert removed.returncode == 0
    assert receiver.url not in run_cli("webhooks", "list", env={**env, "COLUMNS": "250"}).stdout
