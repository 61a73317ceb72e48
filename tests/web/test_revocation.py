"""Revocation and expiry reach every worker: `mandate serve --workers 2` against a real PostgreSQL.

Each worker process remembers a token lookup for at most `CACHE_TTL_S` (one second, web/auth.py) and checks expiry
against the clock on every request. So, once both workers have served the token (their caches hold it):

- a revoked token is refused by every worker on every request sent from one second after the revocation committed
  (and a worker that refused it once never serves it again);
- an expired token is refused on the very next request, in both workers.

Every request goes over a new connection (the kernel spreads them over the workers) and is attributed to the worker
process that holds the server end of that connection (psutil), so "both workers" is observed, not hoped for.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psutil
import psycopg

from mandate.db import tokens as tq
from mandate.demo.scenarios import ORGANIZATION_ID
from mandate.tokens import Role, digest, new_secret
from mandate.web.auth import CACHE_TTL_S, MAX_FAILURES


@dataclass
class Answer:
    sent: float  # time.monotonic() when the connection was opened
    status: int
    worker: int  # pid of the worker process that answered


@dataclass
class Server:
    port: int
    master: psutil.Process
    workers: frozenset[int]

    def ask(self, secret: str) -> Answer:
        """GET /api/organizations with the token over a new connection; which worker answered."""
        sent = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/api/organizations", headers={"Authorization": f"Bearer {secret}"})
            response = conn.getresponse()
            response.read()
            assert conn.sock is not None
            local = conn.sock.getsockname()
            worker = self._owner(local)
            return Answer(sent, response.status, worker)
        finally:
            conn.close()

    def _owner(self, client: tuple[str, int]) -> int:
        for pid in self.workers:
            for c in psutil.Process(pid).net_connections(kind="tcp"):
                if c.raddr and (c.raddr.ip, c.raddr.port) == client:
                    return pid
        raise AssertionError(f"no worker of {sorted(self.workers)} holds the connection from {client}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def two_workers(db_url: str) -> Iterator[Server]:
    """`mandate serve --workers 2` (authentication on) until the block ends; master and workers stopped by PID."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mandate", "serve", "--port", str(port), "--workers", "2"],
        env={**os.environ, "DATABASE_URL": db_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    master = psutil.Process(proc.pid)
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        workers: list[psutil.Process] = []
        while time.monotonic() < deadline and proc.poll() is None:
            workers = [p for p in master.children(recursive=True) if "resource_tracker" not in " ".join(p.cmdline())]
            seen.update(p.pid for p in workers)
            listening = all(
                any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in p.net_connections("tcp"))
                for p in workers
            )
            if len(workers) == 2 and listening and _healthy(port):
                break
            time.sleep(0.1)
        assert proc.poll() is None, f"mandate serve exited: {proc.stderr.read() if proc.stderr else ''}"
        assert len(workers) == 2, f"expected 2 worker processes, found {[p.cmdline() for p in workers]}"
        yield Server(port, master, frozenset(p.pid for p in workers))
    finally:
        seen.update(p.pid for p in _children(master))
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        _, alive = psutil.wait_procs([_process(pid) for pid in seen if _process(pid) is not None], timeout=10)
        for p in alive:  # a worker that outlived its master: ours, stopped by its PID
            p.kill()
        if proc.stderr is not None:
            proc.stderr.close()
        assert not alive, f"worker processes outlived the server: {[p.pid for p in alive]}"


def _children(p: psutil.Process) -> list[psutil.Process]:
    try:
        return list(p.children(recursive=True))
    except psutil.Error:
        return []


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/api/health")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def _issue(db_url: str, expires_at: datetime | None) -> tuple[UUID, str]:
    secret = new_secret()
    with psycopg.connect(db_url, autocommit=True) as conn:
        token_id = tq.issue(
            conn,
            secret_sha256=digest(secret),
            name="revocation-test",
            organization_id=UUID(ORGANIZATION_ID),
            domains=None,
            role=Role.ADMIN,
            expires_at=expires_at,
        )
    return token_id, secret


def _until_both_workers_served(server: Server, secret: str, each: int = 3) -> list[Answer]:
    """Requests until every worker has answered 200 at least `each` times (its cache holds the token)."""
    answers: list[Answer] = []
    for _ in range(400):
        answers.append(server.ask(secret))
        assert answers[-1].status == 200, answers[-1]
        if all(sum(a.worker == w for a in answers) >= each for w in server.workers):
            return answers
    raise AssertionError(f"the kernel sent {len(answers)} connections to one worker only: {answers[:5]}")


def _refused(answers: list[Answer], already: dict[int, int] | None = None) -> None:
    """Every answer refuses the token: 401, or 429 once that worker has refused it MAX_FAILURES times (its
    bad-token limit for this address). Never 200."""
    failures = dict(already or {})
    for a in answers:
        assert a.status != 200, f"a worker ({a.worker}) still served the token: {a}"
        allowed = {401, 429} if failures.get(a.worker, 0) >= MAX_FAILURES else {401}
        assert a.status in allowed, a
        failures[a.worker] = failures.get(a.worker, 0) + 1


def test_a_revoked_token_is_refused_by_both_workers_within_a_second(db_url: str) -> None:
    token_id, secret = _issue(db_url, expires_at=None)
    with two_workers(db_url) as server:
        _until_both_workers_served(server, secret)
        with psycopg.connect(db_url, autocommit=True) as conn:
            assert tq.revoke(conn, token_id, "revocation test") is not None
        revoked = time.monotonic()  # the revocation has committed
        during: list[Answer] = []  # the one second a worker may still answer from its cache: a probe every 0.1 s
        tick = threading.Event()
        while time.monotonic() < revoked + CACHE_TTL_S:
            during.append(server.ask(secret))
            tick.wait(min(0.1, max(0.0, revoked + CACHE_TTL_S - time.monotonic())))
        after = [server.ask(secret) for _ in range(24)]

    # Within the second, a worker may still serve it from its cache, but once it refused it, it never serves it.
    for worker in server.workers:
        statuses = [a.status for a in during if a.worker == worker]
        assert statuses == sorted(statuses, key=lambda s: s != 200), f"worker {worker} served it after refusing"
        assert set(statuses) <= {200, 401}
    served_late = [a.sent - revoked for a in during if a.status == 200]
    assert all(delay < CACHE_TTL_S for delay in served_late)
    print(f"served {len(served_late)} times within {max(served_late, default=0):.3f} s after the revocation")
    # From one second on: the very next requests, in both workers, all refused.
    assert all(a.sent >= revoked + CACHE_TTL_S for a in after)
    assert {a.worker for a in after} == server.workers, "one worker answered every request after the revocation"
    already = {w: sum(a.worker == w and a.status != 200 for a in during) for w in server.workers}
    _refused(after, already)
    assert after[-1].sent - after[0].sent < 1.0, "the next requests took over a second: not 'the next' ones"


def test_an_expired_token_is_refused_by_both_workers_on_the_next_request(db_url: str) -> None:
    with two_workers(db_url) as server:
        expires_at = datetime.now(UTC) + timedelta(seconds=4)
        _, secret = _issue(db_url, expires_at=expires_at)
        served = _until_both_workers_served(server, secret)
        assert datetime.now(UTC) < expires_at, "both workers did not serve the token before it expired"
        # Both workers' caches hold the token now; refresh them once more just before it expires.
        wake = threading.Event()
        wake.wait(max(0.0, (expires_at - datetime.now(UTC)).total_seconds() - 0.3))
        last = server.ask(secret)
        assert last.status == 200 and datetime.now(UTC) < expires_at
        wake.wait(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 0.01)
        assert datetime.now(UTC) >= expires_at
        after = [server.ask(secret) for _ in range(24)]

    assert len(served) >= 6
    assert {a.worker for a in after} == server.workers, "one worker answered every request after the expiry"
    _refused(after)
    assert after[-1].sent - after[0].sent < 1.0, "the next requests took over a second: not 'the next' ones"
