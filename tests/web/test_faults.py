"""The fault rounds of the reliability suite (docs/reliability.md), short enough for CI, with fixed seeds: a real
`mandate serve` process against a PostgreSQL of its own (bench/faults.py), under load, through a PostgreSQL
stop/start, a kill -9, and a flood of idle and slow sockets. Each round stops what it started, by PID.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bench.faults import CLIENT_TIMEOUT_S, Load, OwnPostgres, decision_bodies, own_postgres, runs, served, stored

from mandate.client import MandateClient, MandateUnavailable
from mandate.db.pool import OUTAGE_BOUND_S
from mandate.demo import scenarios

pytestmark = pytest.mark.slow

OUTAGE_S = 12.0  # longer than the bound, so that requests wait it out
RECOVERY_S = 1.0  # "within about a second" of PostgreSQL answering again
RECOVERY_MARGIN_S = 0.5  # for a 2-core machine shared with other work


@pytest.fixture
def pg() -> Iterator[OwnPostgres]:
    with own_postgres() as server:
        yield server


def _json_lines(lines: list[str]) -> list[dict[str, object]]:
    """The server's log: every line from the first one the logger wrote (what the CLI prints to the terminal
    before it starts the server is console text, not log)."""
    first = next(i for i, line in enumerate(lines) if line.startswith("{"))
    lines = lines[first:]
    not_json = [line for line in lines if not line.startswith("{")]
    assert not not_json, f"log lines that are not JSON: {not_json[:5]}"
    return [json.loads(line) for line in lines]


def test_a_postgresql_outage_under_load_is_answered_503_in_time_and_recovered_within_a_second(
    pg: OwnPostgres, tmp_path: Path
) -> None:
    token = pg.token()
    with served(pg.url, tmp_path / "serve.log") as server:
        with Load(server.url, token, connections=8, health_every=0.1) as load:
            time.sleep(3)
            pg.stop()
            stopped_at = time.monotonic()
            # The SDK, with its default timeout and no retries, sees the server's 503 — not a timeout of its own.
            sdk = MandateClient(
                server.url,
                organization_id=scenarios.ORGANIZATION_ID,
                domain="config-management",
                token=token,
                retries=0,
            )
            with sdk, pytest.raises(MandateUnavailable) as unavailable:
                sdk.decide(
                    "config.update", "pre_commit", context={}, scope={"service": "s"}, target="t", actor="sdk-agent"
                )
            assert unavailable.value.__cause__ is None, f"the SDK gave up on its own: {unavailable.value!r}"
            assert "503" in str(unavailable.value) or "did not store" in str(unavailable.value)
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))
            pg.start()
            ready_at = time.monotonic()
            time.sleep(4)
        answers = load.answers
        lines = server.log_lines()

    during = [a for a in answers if stopped_at < a.ended and a.started < ready_at]
    unavailable_answers = [a for a in during if a.status == 503]
    assert unavailable_answers, "no request met the outage"
    assert {a.status for a in answers} <= {201, 503}, {a.status for a in answers} - {201, 503}
    assert not [a for a in answers if a.status is None], "a client saw no answer (a timeout or a dropped connection)"
    worst = max(a.latency for a in unavailable_answers)
    assert worst <= OUTAGE_BOUND_S, f"a 503 took {worst:.2f} s"

    # Recovery: a stored decision within about a second of PostgreSQL answering, and no 503 after that.
    first_ok = min(a.ended for a in answers if a.status == 201 and a.ended > ready_at)
    assert first_ok - ready_at <= RECOVERY_S + RECOVERY_MARGIN_S, f"recovered {first_ok - ready_at:.2f} s after"
    late = [a for a in answers if a.status == 503 and a.started > ready_at + RECOVERY_S]
    assert not late, f"{len(late)} answers 503 after recovery, the last {max(a.started for a in late) - ready_at:.2f} s"

    # /api/health: 200, then 503 for the outage, then 200 — it never flaps.
    assert runs([status for _, status in load.health]) == [200, 503, 200]
    healthy_again = min(t for t, status in load.health if t > ready_at and status == 200)
    assert healthy_again - ready_at <= RECOVERY_S + RECOVERY_MARGIN_S

    # Acknowledged = stored, each whole; nothing stored that was not sent.
    acked, sent = {a.decision_id for a in answers if a.status == 201}, {a.decision_id for a in answers}
    found = stored(pg.url, sent)
    assert acked <= found.whole, f"{len(acked - found.whole)} acknowledged decisions are not stored whole"
    assert found.ids == found.whole
    assert len(acked) > 100

    # Every line the server wrote is JSON, the pool's reconnection warnings included.
    entries = _json_lines(lines)
    assert any(e["logger"] == "psycopg.pool" for e in entries)
    print(
        f"\noutage round: {len(answers)} requests, {len(acked)} acknowledged and stored, {len(unavailable_answers)} "
        f"answered 503 (slowest {worst:.2f} s), first stored decision {first_ok - ready_at:.2f} s after PostgreSQL "
        f"answered, health 200 again after {healthy_again - ready_at:.2f} s"
    )


def test_kill_9_of_the_server_under_load_loses_no_acknowledged_decision(pg: OwnPostgres, tmp_path: Path) -> None:
    token = pg.token()
    # One process: with --workers N, a kill -9 of uvicorn's supervisor would leave its worker processes running.
    with served(pg.url, tmp_path / "serve.log") as server:
        with Load(server.url, token, connections=8) as load:
            time.sleep(4)
            server.kill()
            killed_at = time.monotonic()
            time.sleep(1)
        answers = load.answers
    _wait_no_sessions(pg.url)
    acked, sent = {a.decision_id for a in answers if a.status == 201}, {a.decision_id for a in answers}
    found = stored(pg.url, sent)
    assert acked <= found.whole, f"{len(acked - found.whole)} acknowledged decisions are not stored whole"
    assert found.ids == found.whole, "a decision is stored without its verdict or timeline"
    in_flight = found.ids - acked
    assert len(in_flight) <= 8 * 32, "more unacknowledged decisions stored than could have been in flight"
    assert len(acked) > 100
    assert all(a.status in (201, None) for a in answers)
    assert all(a.status is None for a in answers if a.started > killed_at + 0.5)
    print(f"\nkill -9 round: {len(acked)} acknowledged, all stored whole; {len(in_flight)} stored unacknowledged")


def _wait_no_sessions(url: str) -> None:
    import psycopg

    deadline = time.monotonic() + 20
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'mandate serve%'"
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(0.1)
    raise AssertionError("the killed server's sessions did not end")


SLOW_SOCKETS = 600  # from one client, against a server whose descriptor limit is 512
NOFILE = 512


def test_hundreds_of_idle_and_slow_sockets_from_one_client_do_not_starve_other_requests(
    pg: OwnPostgres, tmp_path: Path
) -> None:
    token = pg.token()
    headers = {"authorization": f"Bearer {token}"}
    with served(pg.url, tmp_path / "serve.log", nofile=NOFILE) as server:
        port = int(server.url.rsplit(":", 1)[1])
        socks: list[socket.socket] = []
        latencies: list[float] = []
        try:
            for i in range(SLOW_SOCKETS):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                socks.append(s)
                if i % 3 == 1:
                    s.sendall(b"POST /api/decisions HTTP/1.1\r\nhost: x\r\n")  # headers, never finished
                elif i % 3 == 2:
                    s.sendall(
                        b"POST /api/decisions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                        b"content-length: 1000\r\n\r\n{"  # a body that never comes
                    )
                if i % 50 == 49:  # normal requests keep being answered while the flood grows
                    started = time.monotonic()
                    r = httpx.post(f"{server.url}/api/decisions", json=_decision(), headers=headers, timeout=10)
                    latencies.append(time.monotonic() - started)
                    assert r.status_code == 201, r.text
            open_fds = len(list(Path(f"/proc/{server.process.pid}/fd").iterdir()))
            for _ in range(20):
                started = time.monotonic()
                assert httpx.get(f"{server.url}/api/health", timeout=10).status_code == 200
                latencies.append(time.monotonic() - started)
            # Connections beyond the cap were closed by the server (the rest of the flood waits in the backlog).
            closed = sum(1 for s in socks if _closed_by_peer(s))
        finally:
            for s in socks:
                s.close()
    assert open_fds < NOFILE - 64, f"{open_fds} descriptors: the cap ({NOFILE} - 160) did not hold"
    assert closed >= SLOW_SOCKETS - NOFILE, closed
    assert max(latencies) < 2.0, max(latencies)
    print(
        f"\nslow-client round: {SLOW_SOCKETS} idle/slow sockets, server descriptors {open_fds}/{NOFILE}, {closed} "
        f"closed by the server, {len(latencies)} normal requests all answered, slowest {max(latencies):.3f} s"
    )


def _decision() -> dict[str, object]:
    return {**decision_bodies()[0], "decision_id": str(uuid.uuid4())}


def _closed_by_peer(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        data = s.recv(65536)
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)
    return data == b"" or data.startswith(b"HTTP/1.1 408") or data.startswith(b"HTTP/1.1 503")


def test_the_client_timeout_of_the_sdk_is_above_the_servers_bound() -> None:
    with MandateClient("http://127.0.0.1:9") as client:
        timeout = client._http.timeout  # the httpx timeout the SDK configured
    assert timeout.read is not None and timeout.read > OUTAGE_BOUND_S
    assert timeout.read == CLIENT_TIMEOUT_S
