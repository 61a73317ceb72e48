"""`mandate serve` as an operator runs it: schema check, JSON logs, 503 while migrating or without database."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx
import psycopg

from mandate.apply import apply_bundle
from mandate.governance.bundle import load_demo_bundle
from mandate.migrate.runner import MigrationLock
from tests.conftest import PgServer
from tests.helpers import run_cli
from tests.web.conftest import bearer, issue_token, start_server
from tests.web.test_api import CRITICAL_DROP, flat


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate: Callable[[], bool], seconds: float = 15) -> bool:
    tick = threading.Event()
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return True
        tick.wait(0.05)
    return False


def test_serve_refuses_a_database_whose_schema_is_too_old(fresh_db: Callable[..., str]) -> None:
    result = run_cli("serve", "--port", str(_free_port()), env={"DATABASE_URL": fresh_db(7)}, timeout=60)
    assert result.returncode == 1
    assert "schema is at version 007" in result.stderr
    assert "mandate migrate up" in result.stderr


@contextmanager
def _serve(db_url: str, *options: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`mandate serve` in a subprocess, healthy, with its base URL; killed afterwards if a test left it running."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mandate", "serve", "--port", str(port), *options],
        env={**os.environ, "DATABASE_URL": db_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/api/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        assert _wait(healthy, 30), "the server did not become healthy"
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_logs_json_without_bodies_and_shuts_down_gracefully(db_url: str) -> None:
    secret = "s3cr3t-signal-value"
    with _serve(db_url) as (proc, url):
        headers = bearer(issue_token(db_url))
        httpx.post(
            f"{url}/api/decisions",
            json={"actor": "a", "target": "t", "context": {"k": secret}},
            timeout=5,
            headers=headers,
        )
        proc.send_signal(signal.SIGTERM)
        # uvicorn finishes in-flight work, then re-raises the signal it caught (exit status -SIGTERM).
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
    _, stderr = proc.communicate()
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    requests = [entry for entry in lines if entry["message"] == "request"]
    assert {"method", "path", "status", "duration_ms", "time", "level"} <= set(requests[-1])
    assert {(r["method"], r["path"], r["status"]) for r in requests} >= {("POST", "/api/decisions", 422)}
    assert secret not in stderr
    assert any(entry["message"].startswith("Finished server process") for entry in lines), "no graceful shutdown"
    assert any(entry["message"] == "Shutting down" for entry in lines)


def test_serve_with_two_workers_starts_both_and_stops_them_on_sigterm(db_url: str) -> None:
    with _serve(db_url, "--workers", "2") as (proc, url):
        for _ in range(20):  # new connections each time: the kernel spreads them over the workers
            assert httpx.get(f"{url}/api/health", timeout=5).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    _, stderr = proc.communicate()
    messages = [json.loads(line)["message"] for line in stderr.splitlines() if line.startswith("{")]
    started = {m for m in messages if m.startswith("Started server process")}
    finished = {m for m in messages if m.startswith("Finished server process")}
    assert len(started) == 2, messages
    assert {m.replace("Started", "Finished") for m in started} == finished, "a worker did not shut down gracefully"


def test_serve_refuses_a_worker_count_below_one(db_url: str) -> None:
    result = run_cli("serve", "--port", str(_free_port()), "--workers", "0", env={"DATABASE_URL": db_url}, timeout=60)
    assert result.returncode == 2
    assert "--workers" in result.stderr


def test_the_api_answers_503_while_a_migration_holds_the_lock(db_url: str) -> None:
    server, thread, url = start_server(db_url)
    token = bearer(issue_token(db_url))
    try:
        with psycopg.connect(db_url, autocommit=True, application_name="mandate migrate run 008") as holder:
            with MigrationLock(holder, wait_s=5):
                assert _wait(lambda: httpx.get(f"{url}/api/health").status_code == 503)
                health = httpx.get(f"{url}/api/health").json()
                assert health["status"] == "migrating"
                assert health["migration"]["application"] == "mandate migrate run 008"
                post = httpx.post(f"{url}/api/decisions", json={"actor": "a", "target": "t"}, headers=token)
                assert post.status_code == 503
                assert "migration is running" in post.json()["error"]["message"]
            assert _wait(lambda: httpx.get(f"{url}/api/health").status_code == 200)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_health_is_503_when_the_database_is_gone(pg: PgServer, fresh_db: Callable[..., str]) -> None:
    url = fresh_db()
    with psycopg.connect(url, autocommit=True) as conn:
        apply_bundle(conn, load_demo_bundle())
    server, thread, base = start_server(url)
    token = bearer(issue_token(url))
    try:
        assert httpx.get(f"{base}/api/health").status_code == 200
        pg.drop(urlsplit(url).path.lstrip("/"))
        r = httpx.get(f"{base}/api/health", timeout=10)
        assert r.status_code == 503
        assert r.json()["database"] == "unreachable"
        listing = httpx.get(f"{base}/api/decisions", timeout=10, headers=token)
        assert listing.status_code in (422, 503)  # never a 500
        unknown = flat(*CRITICAL_DROP)
        unknown["organization_id"] = unknown["scope"]["organization_id"] = str(uuid.uuid4())
        for body in (flat(*CRITICAL_DROP), unknown):
            # A decision to store, and one refused (whose refusal is logged in the database): both 503, not 500.
            decision = httpx.post(f"{base}/api/decisions", json=body, timeout=40, headers=token)
            assert decision.status_code == 503, decision.text
            assert decision.json()["error"]["code"] == "unavailable"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
