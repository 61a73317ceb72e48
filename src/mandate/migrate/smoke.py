"""Smoke tests of T+80–100 against Mandate's HTTP API: the checklist's four requests, each with what it must show.

- GET /api/health                   200, JSON `status` "ok" (and the database reachable);
- GET /api/decisions                200, JSON `items` is a list;
- GET /api/verdicts                 200, JSON `items` is a list;
- GET /api/decisions?domain=<d>     200, a real domain of the database (finance when there is one), every item of
                                    that domain, and at least one when the database holds decisions of it.

Against `--api-url` (the operator's restarted service), after waiting (bounded) for it to answer healthy; without
it, against Mandate's own API started in this process on a free loopback port against the migrated database.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import psycopg

from mandate.db import catalog, migration_smoke
from mandate.errors import CheckFailed
from mandate.migrate import runner
from mandate.migrate.progress import Progress

TOKEN_VARIABLE = "MANDATE_API_TOKEN"  # the variable the SDK reads too (mandate.client)

TIMEOUT_S = 30.0


AppFactory = Callable[[str], Any]
"""Builds Mandate's API (an ASGI app, without authentication) on a database URL: the smoke step's in-process
service. The caller gives it (`mandate.migrate_commands` gives the web layer's), so `migrate` never imports `web`."""


@dataclass(frozen=True)
class SmokeTest:
    key: str  # health | decisions | verdicts | domain
    url: str
    status_code: int | None
    passed: bool
    detail: str
    elapsed_ms: float
    excerpt: str

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "url": self.url,
            "status_code": self.status_code,
            "passed": self.passed,
            "detail": self.detail,
            "elapsed_ms": round(self.elapsed_ms, 1),
            "excerpt": self.excerpt,
        }


@dataclass
class SmokeRun:
    target: str
    in_process: bool
    domain: str | None
    tests: list[SmokeTest] = field(default_factory=list)
    time_to_healthy_s: float | None = None

    @property
    def passed(self) -> bool:
        return len(self.tests) == 4 and all(t.passed for t in self.tests)

    @property
    def errors(self) -> int:
        return sum(1 for t in self.tests if not t.passed)

    def get(self, key: str) -> SmokeTest | None:
        return next((t for t in self.tests if t.key == key), None)

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "in_process": self.in_process,
            "domain": self.domain,
            "tests": [t.as_json() for t in self.tests],
            "time_to_healthy_s": self.time_to_healthy_s,
            "passed": self.passed,
        }


@dataclass(frozen=True)
class Target:
    """What the domain-scoped request filters on: a real (organization, domain) of the database."""

    organization_id: str | None
    domain: str | None
    decisions: int  # decisions of that domain in the database


def pick_target(conn: psycopg.Connection[Any]) -> Target:
    """A real domain to filter on (finance when it has decisions, else the busiest), with its organization."""
    busiest = migration_smoke.busiest_domain(conn)
    if busiest is not None:
        return Target(*busiest)
    first = migration_smoke.first_domain(conn)
    return Target(first[0], first[1], 0) if first else Target(None, None, 0)


def _get(client: httpx.Client, key: str, path: str) -> tuple[SmokeTest | None, Any, httpx.Response | None]:
    """GET `path`; a failed SmokeTest when it does not answer 200 with JSON, else (None, body, response)."""
    started = time.perf_counter()
    url = str(client.base_url).rstrip("/") + path
    try:
        response = client.get(path)
    except httpx.HTTPError as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return SmokeTest(key, url, None, False, f"no answer: {exc}", elapsed, ""), None, None
    elapsed = (time.perf_counter() - started) * 1000
    excerpt = response.text[:300]
    if response.status_code != 200:
        return (
            SmokeTest(key, url, response.status_code, False, f"HTTP {response.status_code}", elapsed, excerpt),
            None,
            response,
        )
    try:
        body = response.json()
    except ValueError:
        return SmokeTest(key, url, 200, False, "the body is not JSON", elapsed, excerpt), None, response
    return None, body, response


def _organization_required(response: httpx.Response | None) -> bool:
    if response is None or response.status_code != 422:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "organization_required" in str(body.get("error") or body.get("code") or body)


def _list(
    client: httpx.Client, key: str, path: str, target: Target
) -> tuple[SmokeTest | None, Any, httpx.Response | None, str]:
    """GET a list as the checklist writes it; when the API needs organization_id (several organizations exist),
    again with the target's organization. Returns the outcome and a note saying so."""
    failed, body, response = _get(client, key, path)
    if failed is not None and _organization_required(response) and target.organization_id:
        joiner = "&" if "?" in path else "?"
        failed, body, response = _get(client, key, f"{path}{joiner}organization_id={target.organization_id}")
        return failed, body, response, " (organization_id added: the API requires it when several organizations exist)"
    return failed, body, response, ""


@contextmanager
def service_token(database_url: str, target: Target) -> Iterator[str | None]:
    """The API token the smoke tests send to a running service (`--api-url`), which authenticates every request:
    MANDATE_API_TOKEN when set; otherwise, when the database keeps tokens (migration 011) and has an organization, a
    `reader` token of the target organization issued for ten minutes and revoked when the tests end (both rows are
    append-only events, named `migration smoke tests`); otherwise none (and an authenticating service answers 401,
    which the tests report)."""
    given = os.environ.get(TOKEN_VARIABLE)
    if given or target.organization_id is None:
        yield given
        return
    from datetime import UTC, datetime, timedelta
    from uuid import UUID

    from mandate.db import tokens as tq
    from mandate.tokens import Role, digest, new_secret

    with psycopg.connect(database_url, autocommit=True, application_name="mandate migrate smoke") as conn:
        if not catalog.has_table(conn, "api_tokens"):
            yield None
            return
        secret = new_secret()
        token_id = tq.issue(
            conn,
            secret_sha256=digest(secret),
            name="migration smoke tests",
            organization_id=UUID(target.organization_id),
            domains=None,
            role=Role.READER,
            expires_at=datetime.now(UTC) + timedelta(minutes=10),
        )
    try:
        yield secret
    finally:
        with psycopg.connect(database_url, autocommit=True, application_name="mandate migrate smoke") as conn:
            tq.revoke(conn, token_id, "the migration smoke tests ended")


def run(base_url: str, target: Target, *, in_process: bool = False, token: str | None = None) -> SmokeRun:
    """The four requests; each SmokeTest says what it showed. `token`: the API token to send (`service_token`)."""
    result = SmokeRun(base_url, in_process, target.domain)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=base_url, timeout=TIMEOUT_S, headers=headers) as client:
        failed, body, response = _get(client, "health", "/api/health")
        if failed is not None:
            result.tests.append(failed)
        else:
            assert response is not None
            ok = (
                isinstance(body, dict)
                and body.get("status") == "ok"
                and body.get("database", "reachable") == "reachable"
            )
            detail = (
                f"status {body.get('status')!r}, database {body.get('database')!r}, schema_version "
                f"{body.get('schema_version')!r}"
                if isinstance(body, dict)
                else "not a JSON object"
            )
            result.tests.append(
                SmokeTest("health", str(response.url), 200, ok, detail, _ms(response), response.text[:300])
            )
        for key, path in (("decisions", "/api/decisions"), ("verdicts", "/api/verdicts")):
            failed, body, response, note = _list(client, key, path, target)
            if failed is not None:
                result.tests.append(failed)
                continue
            assert response is not None
            items = body.get("items") if isinstance(body, dict) else None
            ok = isinstance(items, list)
            detail = (
                f"{len(items)} item(s) on the first page" if isinstance(items, list) else "no `items` list"
            ) + note
            result.tests.append(SmokeTest(key, str(response.url), 200, ok, detail, _ms(response), response.text[:300]))
        if target.domain is None:
            result.tests.append(SmokeTest("domain", "", None, False, "the database has no domain to filter on", 0, ""))
            return result
        failed, body, response, note = _list(client, "domain", f"/api/decisions?domain={quote(target.domain)}", target)
        if failed is not None:
            result.tests.append(failed)
            return result
        assert response is not None
        result.tests.append(_domain_test(target, body, response, note))
    return result


def _domain_test(target: Target, body: Any, response: httpx.Response, note: str) -> SmokeTest:
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        ok, detail = False, "no `items` list"
    else:
        others = sorted({str(i.get("domain")) if isinstance(i, dict) else "?" for i in items} - {target.domain or ""})
        if others:
            ok, detail = False, f"items of other domains returned: {', '.join(others[:5])}"
        elif target.decisions and not items:
            ok, detail = False, f"no item, but the database holds {target.decisions} decision(s) of {target.domain}"
        else:
            ok, detail = True, f"{len(items)} item(s), every one of domain {target.domain}"
    return SmokeTest("domain", str(response.url), 200, ok, detail + note, _ms(response), response.text[:300])


def _ms(response: httpx.Response) -> float:
    return response.elapsed.total_seconds() * 1000


def wait_healthy(base_url: str, timeout_s: float, interval_s: float = 0.5) -> float:
    """Poll GET /api/health until it answers 200 with status ok; seconds it took. CheckFailed after `timeout_s`."""
    started = time.perf_counter()
    last = "no answer yet"
    with httpx.Client(base_url=base_url, timeout=5.0) as client:
        while True:
            try:
                response = client.get("/api/health")
                if response.status_code == 200 and response.json().get("status") == "ok":
                    return time.perf_counter() - started
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except (httpx.HTTPError, ValueError, AttributeError) as exc:
                last = str(exc) or type(exc).__name__
            if time.perf_counter() - started >= timeout_s:
                raise CheckFailed(f"{base_url}/api/health did not answer healthy within {timeout_s:g} s (last: {last})")
            time.sleep(interval_s)


@contextmanager
def in_process(database_url: str, app_factory: AppFactory, start_timeout_s: float = 30.0) -> Iterator[str]:
    """Mandate's own API, built by `app_factory`, on a free loopback port for the duration of the block."""
    import uvicorn

    # Loopback, in this process, for the duration of the smoke tests only: the factory builds it without auth.
    app = app_factory(database_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="mandate-smoke-api", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout_s
        while not server.started:
            if not thread.is_alive():
                raise CheckFailed("Mandate's API stopped while starting; see the log above")
            if time.monotonic() > deadline:
                raise CheckFailed(f"Mandate's API did not start within {start_timeout_s:g} s")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def run_step(
    conn: psycopg.Connection[Any],
    database_url: str,
    progress: Progress,
    data: dict[str, Any],
    *,
    api_url: str | None,
    start_wait_s: float,
    to: int | None,
    api_app: AppFactory | None,
) -> None:
    """The runbook's smoke-test step after COMMIT, recorded in `data["smoke"]`: against `api_url` once it answers
    healthy, else Mandate's API built by `api_app` in this process; skipped while migrations the API needs are
    pending (--to stopped before head). CheckFailed when a test fails."""
    pending = [f.label for f in runner.status(conn).pending]
    if pending:
        # --to stopped before head: this Mandate's API refuses the database until the later migrations apply.
        reason = (
            f"not applicable: the database is at schema {runner.status(conn).current_version:03d} (--to "
            f"{to}) and Mandate's API needs {', '.join(pending)} too; run `mandate migrate up`, then "
            "`mandate migrate smoke 008`"
        )
        progress.skipped("smoke tests", reason)
        data["smoke"] = {"skipped": reason, "not_applicable": True, "pending": pending}
        return
    with progress.step("smoke tests") as step:
        target = pick_target(conn)
        if api_url:
            base = api_url.rstrip("/")
            progress.log(f"waiting (at most {start_wait_s:g} s) for {base}/api/health")
            healthy = wait_healthy(base, start_wait_s)
            with service_token(database_url, target) as token:
                result = run(base, target, token=token)
            result.time_to_healthy_s = round(healthy, 3)
        elif api_app is not None:
            progress.log("no --api-url: starting Mandate's API in this process on the migrated database")
            with in_process(database_url, api_app) as base:
                result = run(base, target, in_process=True)
        else:
            raise CheckFailed("no API to run the smoke tests against: give --api-url of the running service")
        data["smoke"] = result.as_json()
        for t in result.tests:
            progress.log(
                f"   {'PASS' if t.passed else 'FAIL'} GET {t.url}: {t.detail}", style=None if t.passed else "red"
            )
        step.summary = f"{4 - result.errors}/4 passed against {result.target}"
        if not result.passed:
            raise CheckFailed(
                "smoke tests failed after the migration was committed: "
                + "; ".join(f"GET {t.url}: {t.detail}" for t in result.tests if not t.passed)
            )
