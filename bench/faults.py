"""What the fault rounds (tests/web/test_faults.py) and the soak (bench/soak.py) share: a PostgreSQL of their own,
`mandate serve` as a process, a load of decisions whose every answer is recorded, and the check that every
acknowledged decision is stored whole.

- `OwnPostgres`: an embedded PostgreSQL in a temporary directory, so that stopping and starting it disturbs no
  other test; `stop()` is PostgreSQL's fast shutdown (sessions ended, data kept), `start()` waits until it answers.
- `served(...)`: `mandate serve` on a free loopback port, healthy, with its stderr in a file; ended by its PID.
- `Load`: `connections` concurrent clients (asyncio + httpx, in a thread of their own) POSTing demo decisions,
  each with a decision_id of its own, at full speed or at a fixed rate; every answer is recorded with its start
  and end (status, or the client-side error, and the transport errors retried before it), and optionally
  `/api/health` every `health_every` seconds.
- `stored(...)`: which decision_ids are stored, and whether each has its verdict and both timeline entries.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg

from mandate.apply import apply_bundle
from mandate.db import embedded
from mandate.db import tokens as token_rows
from mandate.demo import scenarios
from mandate.governance.bundle import load_demo_bundle
from mandate.migrate.runner import Runner
from mandate.tokens import Role, digest, new_secret

CLIENT_TIMEOUT_S = 15.0  # the SDK's default: above the server's 10 s bound


class OwnPostgres:
    """An embedded PostgreSQL in a directory of its own, migrated to head with the demo governance applied."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mandate-faults-pg-"))
        self.url = embedded.start(self.dir)
        with psycopg.connect(self.url, autocommit=True) as conn:
            Runner(conn).up()
            apply_bundle(conn, load_demo_bundle())

    def stop(self) -> None:
        embedded.stop(self.dir)
        # pgserver remembers the servers it started in this process and would hand back the stopped one.
        from pgserver.postgres_server import PostgresServer

        pgdata = (self.dir / "pgdata").resolve()
        for key in [k for k in PostgresServer._instances if Path(k).resolve() == pgdata]:
            del PostgresServer._instances[key]

    def start(self) -> None:
        embedded.start(self.dir)

    def token(self) -> str:
        """An admin token of the demo organization, issued as `mandate token create` does; its secret."""
        secret = new_secret()
        with psycopg.connect(self.url, autocommit=True) as conn:
            token_rows.issue(
                conn,
                secret_sha256=digest(secret),
                name="faults",
                organization_id=UUID(scenarios.ORGANIZATION_ID),
                domains=None,
                role=Role.ADMIN,
                expires_at=None,
            )
        return secret

    def close(self) -> None:
        try:
            embedded.stop(self.dir)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    pg = OwnPostgres()
    try:
        yield pg
    finally:
        pg.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def kill(self) -> None:
        """kill -9, by PID."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


def wait_healthy(url: str, seconds: float = 60.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"mandate serve exited with {process.returncode}")
        try:
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"mandate serve did not become healthy within {seconds:.0f} s")
        time.sleep(0.1)


@contextmanager
def served(
    database_url: str,
    log: Path,
    *options: str,
    nofile: int | None = None,
    port: int | None = None,
) -> Iterator[Served]:
    """`mandate serve` on 127.0.0.1 until the block ends (SIGTERM by PID, then SIGKILL if it lingers). `nofile`:
    its descriptor limit, soft and hard."""
    port = port or free_port()

    def limit() -> None:
        if nofile is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    command = [sys.executable, "-m", "mandate", "serve", "--host", "127.0.0.1", "--port", str(port), *options]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "DATABASE_URL": database_url},
            preexec_fn=limit if nofile is not None else None,
        )
    server = Served(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_healthy(server.url, process=process)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def decision_bodies() -> list[dict[str, Any]]:
    """The demo scenarios as request bodies, one per scenario (a decision_id is added per request)."""
    bodies = []
    for s in scenarios.ALL:
        body: dict[str, Any] = {
            "organization_id": scenarios.ORGANIZATION_ID,
            "domain_name": s.domain,
            "intent": s.intent,
            "stage": s.stage,
            "actor": s.actor,
            "target": s.target,
            "context": dict(s.context),
            "scope": dict(s.scope),
        }
        if s.unstructured_context:
            body["unstructured_context"] = s.unstructured_context
        bodies.append(body)
    return bodies


@dataclass(frozen=True)
class Answer:
    decision_id: str
    started: float  # time.monotonic()
    ended: float
    status: int | None  # None: no HTTP answer (`error` says what the client saw)
    error: str | None = None
    retried: list[str] = field(default_factory=list)  # transport errors retried before this answer

    @property
    def latency(self) -> float:
        return self.ended - self.started


@dataclass
class Load:
    """Decisions POSTed by `connections` concurrent clients until `stop()`; `rate` per second in all (None: as fast
    as the server answers). Fixed `seed`: the same sequence of bodies every run. A request that gets no HTTP answer
    (a connection the server closed as it was reused, a dropped connection) is sent again with the same decision_id
    up to `retries` times, as the SDK does; `Answer.retried` keeps what was retried."""

    url: str
    token: str
    connections: int = 8
    rate: float | None = None
    seed: int = 14
    health_every: float | None = None
    retries: int = 0
    answers: list[Answer] = field(default_factory=list)
    health: list[tuple[float, int | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Load:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="load", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=CLIENT_TIMEOUT_S + 10)
            assert not self._thread.is_alive(), "the load did not stop"

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def acknowledged(self) -> set[str]:
        return {a.decision_id for a in self.answers if a.status in (200, 201)}

    def sent(self) -> set[str]:
        return {a.decision_id for a in self.answers}

    async def _run(self) -> None:
        bodies = decision_bodies()
        rng = random.Random(self.seed)
        order = [rng.randrange(len(bodies)) for _ in range(4096)]
        limits = httpx.Limits(max_connections=self.connections, max_keepalive_connections=self.connections)
        headers = {"authorization": f"Bearer {self.token}"}
        interval = None if self.rate is None else self.connections / self.rate
        async with httpx.AsyncClient(
            base_url=self.url, timeout=CLIENT_TIMEOUT_S, limits=limits, headers=headers
        ) as client:
            tasks = [self._client(client, i, bodies, order, interval) for i in range(self.connections)]
            if self.health_every is not None:
                tasks.append(self._watch_health())
            await asyncio.gather(*tasks)

    async def _client(
        self, client: httpx.AsyncClient, i: int, bodies: list[dict[str, Any]], order: list[int], interval: float | None
    ) -> None:
        n = 0
        next_at = time.monotonic() + (0 if interval is None else interval * i / self.connections)
        while not self._stop.is_set():
            if interval is not None:
                wait = next_at - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                next_at = max(next_at + interval, time.monotonic() - interval)
            body = {**bodies[order[(i * 131 + n) % len(order)]], "decision_id": str(uuid.uuid4())}
            n += 1
            started = time.monotonic()
            retried: list[str] = []
            while True:
                try:
                    r = await client.post("/api/decisions", json=body)
                    answer = Answer(body["decision_id"], started, time.monotonic(), r.status_code, retried=retried)
                    break
                except httpx.HTTPError as exc:
                    if len(retried) < self.retries:  # as the SDK does: the same decision_id, stored at most once
                        retried.append(type(exc).__name__)
                        continue
                    answer = Answer(body["decision_id"], started, time.monotonic(), None, type(exc).__name__, retried)
                    await asyncio.sleep(0.05)  # the server is gone (kill -9): do not spin
                    break
            self.answers.append(answer)

    async def _watch_health(self) -> None:
        assert self.health_every is not None
        async with httpx.AsyncClient(base_url=self.url, timeout=CLIENT_TIMEOUT_S) as client:
            while not self._stop.is_set():
                try:
                    status: int | None = (await client.get("/api/health")).status_code
                except httpx.HTTPError:
                    status = None
                self.health.append((time.monotonic(), status))
                await asyncio.sleep(self.health_every)


@dataclass(frozen=True)
class Stored:
    ids: set[str]
    whole: set[str]  # with the verdict and both timeline entries of the decision's stage


def stored(database_url: str, decision_ids: set[str]) -> Stored:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            """SELECT d.decision_id::text,
                      EXISTS (SELECT 1 FROM mandate.verdict_events v
                              WHERE v.decision_id = d.decision_id AND v.stage = d.stage)
                      AND (SELECT count(*) FROM mandate.audit_timeline_entries t
                           WHERE t.decision_id = d.decision_id AND t.stage = d.stage) = 2
               FROM mandate.decision_events d WHERE d.decision_id = ANY(%s::uuid[])""",
            (sorted(decision_ids),),
        ).fetchall()
    return Stored({r[0] for r in rows}, {r[0] for r in rows if r[1]})


def runs(statuses: list[int | None]) -> list[int | None]:
    """The statuses with repeats collapsed: [200, 200, 503, 200] → [200, 503, 200]."""
    out: list[int | None] = []
    for s in statuses:
        if not out or out[-1] != s:
            out.append(s)
    return out
