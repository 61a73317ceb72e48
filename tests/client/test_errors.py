"""Every error the SDK raises, provoked against a real server (or a closed/silent port): typed, never bare."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from mandate.client import (
    AsyncMandateClient,
    MandateAPIError,
    MandateClient,
    MandateConflict,
    MandateNotFound,
    MandateUnavailable,
    MandateValidationError,
)
from mandate.db.migration_lock import LOCK_KEYS
from mandate.demo import scenarios as s
from tests.client.conftest import DemoServer

WRITE = s.LARGE_PRODUCTION_WRITE


@pytest.fixture
def client(demo_server: DemoServer) -> Iterator[MandateClient]:
    with MandateClient(demo_server.url, organization_id=s.ORGANIZATION_ID, domain=s.CONFIG_DOMAIN, backoff=0.01) as c:
        yield c


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_signal_of_the_wrong_type_names_the_field(client: MandateClient, demo_server: DemoServer) -> None:
    with pytest.raises(MandateValidationError) as caught:
        client.decide(
            WRITE.intent,
            WRITE.stage,
            **{**WRITE.decide_args(), "context": {"content_length": "big", "content_type": "yaml"}},
        )

    err = caught.value
    assert err.status_code == 422
    assert err.code == "invalid_signals"
    assert [(p.field, p.code) for p in err.problems] == [("context.content_length", "wrong_type")]
    assert "context.content_length" in str(err)
    assert demo_server.count("SELECT count(*) FROM mandate.decision_events") == 0


def test_unknown_attribution_is_refused_with_verdict_observe(client: MandateClient) -> None:
    with pytest.raises(MandateValidationError) as caught:
        client.decide(WRITE.intent, WRITE.stage, **{**WRITE.decide_args(), "domain": "no-such-domain"})

    err = caught.value
    assert err.code == "attribution"
    assert [(p.field, p.code) for p in err.problems] == [("domain", "unknown")]
    assert err.body["verdict"] == "OBSERVE"


def test_a_malformed_body_names_the_field(client: MandateClient) -> None:
    with pytest.raises(MandateValidationError) as caught:
        client.decide(WRITE.intent, WRITE.stage, **{**WRITE.decide_args(), "actor": ""})

    assert [p.field for p in caught.value.problems] == ["actor"]


def test_an_unknown_list_filter_is_a_validation_error(client: MandateClient) -> None:
    with pytest.raises(MandateValidationError) as caught:
        list(client.list_decisions(colour="red"))

    assert caught.value.status_code == 400
    assert [p.field for p in caught.value.problems] == ["colour"]


def test_unknown_decisions_are_not_found(client: MandateClient) -> None:
    missing = uuid.uuid4()
    for call in (client.get_decision, client.get_verdict, client.get_timeline, client.replay):
        with pytest.raises(MandateNotFound) as caught:
            call(missing)
        assert caught.value.status_code == 404
        assert str(missing) in str(caught.value)
    with pytest.raises(MandateNotFound):
        client.report_outcome(missing, "succeeded")


def test_a_stage_without_verdict_is_not_found(client: MandateClient) -> None:
    verdict = client.decide(WRITE.intent, WRITE.stage, **WRITE.decide_args())

    with pytest.raises(MandateNotFound, match="no verdict at stage executed"):
        client.get_verdict(verdict.decision_id, stage="executed")


def test_same_decision_and_stage_with_another_body_is_a_conflict(client: MandateClient) -> None:
    decision_id = uuid.uuid4()
    client.decide(WRITE.intent, WRITE.stage, **WRITE.decide_args(), decision_id=decision_id)

    with pytest.raises(MandateConflict) as caught:
        client.decide(
            WRITE.intent, WRITE.stage, **{**WRITE.decide_args(), "target": "/elsewhere.yaml"}, decision_id=decision_id
        )

    assert caught.value.status_code == 409
    assert caught.value.code == "conflict"


def test_a_closed_port_is_unavailable_after_the_retries() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with MandateClient(url, organization_id=s.ORGANIZATION_ID, domain=s.CONFIG_DOMAIN, retries=2, backoff=0.01) as c:
        with pytest.raises(MandateUnavailable) as caught:
            c.decide(WRITE.intent, WRITE.stage, **WRITE.decide_args())
        with pytest.raises(MandateUnavailable):
            c.health()

    err = caught.value
    assert err.status_code is None
    assert "after 3 attempts" in str(err) and url in str(err)
    assert err.__cause__ is not None


def test_a_silent_server_times_out_into_unavailable() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections complete in the backlog; nothing ever answers
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    try:
        with MandateClient(
            url, organization_id=s.ORGANIZATION_ID, domain="d", timeout=0.2, retries=1, backoff=0.01
        ) as c:
            started = time.monotonic()
            with pytest.raises(MandateUnavailable, match=r"ReadTimeout.*after 2 attempts"):
                c.decide(WRITE.intent, WRITE.stage, **WRITE.decide_args())
            assert time.monotonic() - started < 5
    finally:
        silent.close()


def test_an_unexpected_status_is_an_api_error(client: MandateClient) -> None:
    huge = {"content_length": 1, "content_type": "yaml", "padding": "x" * 300_000}

    with pytest.raises(MandateAPIError) as caught:
        client.decide(WRITE.intent, WRITE.stage, **{**WRITE.decide_args(), "context": huge})

    assert (caught.value.status_code, caught.value.code) == (413, "too_large")


class MigrationLockHeld:
    """Holds the migration advisory lock, as a running migration does; the server then answers 503."""

    def __init__(self, database_url: str) -> None:
        self.conn = psycopg.connect(database_url, autocommit=True)
        self.conn.execute("SELECT pg_advisory_lock(%s, %s)", LOCK_KEYS)

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.execute("SELECT pg_advisory_unlock(%s, %s)", LOCK_KEYS)
            self.conn.close()


def wait_for_migrating(client: MandateClient) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            client.health()
        except MandateUnavailable as exc:
            if exc.body.get("status") == "migrating":
                return
        time.sleep(0.1)
    raise AssertionError("the server never reported the migration")


def test_503_while_migrating_is_unavailable(demo_server: DemoServer) -> None:
    lock = MigrationLockHeld(demo_server.database_url)
    try:
        with MandateClient(demo_server.url, organization_id=s.ORGANIZATION_ID, domain=s.CONFIG_DOMAIN, retries=0) as c:
            wait_for_migrating(c)
            with pytest.raises(MandateUnavailable) as caught:
                c.decide(WRITE.intent, WRITE.stage, **WRITE.decide_args())
    finally:
        lock.release()

    assert (caught.value.status_code, caught.value.code) == (503, "migrating")


def test_decide_is_retried_through_a_503_and_stored_once(demo_server: DemoServer) -> None:
    lock = MigrationLockHeld(demo_server.database_url)
    try:
        with MandateClient(
            demo_server.url, organization_id=s.ORGANIZATION_ID, domain=s.CONFIG_DOMAIN, retries=12, backoff=0.2
        ) as c:
            wait_for_migrating(c)
            threading.Timer(0.5, lock.release).start()
            verdict = c.decide(WRITE.intent, WRITE.stage, **WRITE.decide_args())
    finally:
        lock.release()

    assert verdict.paused and not verdict.idempotent_replay
    assert demo_server.count("SELECT count(*) FROM mandate.decision_events") == 1


def test_async_errors_are_the_same_types(demo_server: DemoServer) -> None:
    async def run() -> None:
        async with AsyncMandateClient(demo_server.url, organization_id=s.ORGANIZATION_ID, domain=s.CONFIG_DOMAIN) as c:
            with pytest.raises(MandateValidationError) as caught:
                await c.decide(
                    WRITE.intent, WRITE.stage, **{**WRITE.decide_args(), "context": {"content_length": True}}
                )
            assert {p.field for p in caught.value.problems} == {"context.content_length", "context.content_type"}
            with pytest.raises(MandateNotFound):
                await c.get_decision(uuid.uuid4())
            decision_id = uuid.uuid4()
            await c.decide(WRITE.intent, WRITE.stage, **WRITE.decide_args(), decision_id=decision_id)
            with pytest.raises(MandateConflict):
                await c.decide(
                    WRITE.intent, "pre_commit", **{**WRITE.decide_args(), "actor": "x"}, decision_id=decision_id
                )
        async with AsyncMandateClient(
            f"http://127.0.0.1:{closed_port()}", organization_id=s.ORGANIZATION_ID, domain="d", backoff=0.01
        ) as down:
            with pytest.raises(MandateUnavailable, match="after 3 attempts"):
                await down.health()

    asyncio.run(run())
