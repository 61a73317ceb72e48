"""Access control on a real server and database: every route refuses a request without a valid token; every route ×
role × own / other / non-existent domain gets the status its rule says; revocation and expiry; brute force; the UI's
login; security headers; CORS; secrets never leave the process except once, to the operator who issued them."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from mandate.apply import apply_bundle
from mandate.governance.bundle import load_demo_bundle
from mandate.web import access
from mandate.web.app import create_app
from mandate.web.auth import COOKIE, MAX_FAILURES, Failures
from tests.web.conftest import bearer, issue_token, start_server
from tests.web.test_api import CRITICAL_DROP, LARGE_WRITE, ORG, flat

OWN, OTHER, MISSING = "config-management", "customer-support", "no-such-domain"
OTHER_ORG = "0b7c6f7e-9a1d-4c3b-8e2f-5a6d7c8b9e01"
PUBLIC_ROUTES = {
    ("GET", "/api/health"),
    ("GET", "/api/v1/health"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
}
"""The explicit allow-list: the only routes that answer without a token (they reveal no data)."""


def app_routes() -> list[tuple[str, str]]:
    routes = access.route_table(create_app("postgresql://unused@127.0.0.1:1/unused").routes)
    assert len(routes) > 30  # the table is really read, included routers too
    return routes


def test_every_route_has_an_access_rule() -> None:
    missing = []
    for method, path in app_routes():
        try:
            access.rule_for(method, path)
        except access.NoRule:
            missing.append(f"{method} {path}")
    assert missing == [], "give these routes a rule in mandate/web/access.py RULES"


def test_the_public_routes_are_exactly_the_allow_list() -> None:
    public = {(m, p) for m, p in app_routes() if access.rule_for(m, p) is access.PUBLIC}
    assert public == PUBLIC_ROUTES


@dataclass
class World:
    url: str
    database_url: str
    tokens: dict[str, str]  # role → secret (own domain only), plus "admin", "other-org", "revoked", "expired"
    decision: str  # a decision of OWN, sent by the agent token
    foreign: str  # a decision of OTHER, sent by the admin token
    by_admin: str  # a decision of OWN sent by the admin token (not the agent's own)
    snapshot_own: str
    snapshot_other: str


@pytest.fixture(scope="module")
def world(pg: Any, templates: Any) -> Iterator[World]:
    from tests.e2e.seed import scratch_database

    with scratch_database(pg, templates(None)) as db:
        with psycopg.connect(db, autocommit=True) as conn:
            apply_bundle(conn, load_demo_bundle())
            conn.execute(
                "INSERT INTO mandate.organizations (organization_id, name) VALUES (%s, 'other-org')", [OTHER_ORG]
            )
            snapshots = dict(conn.execute("SELECT domain, snapshot_id::text FROM mandate.policy_snapshots").fetchall())
        own = frozenset({OWN})
        tokens = {role: issue_token(db, role=role, domains=own, name=role) for role in ("agent", "approver", "reader")}
        tokens["admin"] = issue_token(db, role="admin")
        tokens["other-org"] = issue_token(db, role="admin", organization_id=OTHER_ORG)
        tokens["expired"] = issue_token(db, role="reader", expires_at=datetime.now(UTC) - timedelta(seconds=1))
        tokens["revoked"] = issue_token(db, role="reader", name="to revoke")
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("""INSERT INTO mandate.api_token_revocations (token_id)
                            SELECT token_id FROM mandate.api_tokens WHERE name = 'to revoke'""")
        server, thread, url = start_server(db)
        # These tests send hundreds of bad tokens from one address on purpose; the limiter has its own test.
        server.config.app.state.auth_failures = Failures(max_failures=100_000)
        try:
            with httpx.Client(base_url=url, timeout=10) as c:
                mine = c.post("/api/decisions", json=flat(*CRITICAL_DROP), headers=bearer(tokens["agent"]))
                assert mine.status_code == 201, mine.text
                theirs = flat("refund.issue", "pre_commit", "a", "t", {}, "svc", "agent", domain=OTHER)
                foreign = c.post("/api/decisions", json=theirs, headers=bearer(tokens["admin"]))
                assert foreign.status_code == 201, foreign.text
                admins = c.post("/api/decisions", json=flat(*CRITICAL_DROP), headers=bearer(tokens["admin"]))
                assert admins.status_code == 201, admins.text
            yield World(
                url,
                db,
                tokens,
                mine.json()["decision_id"],
                foreign.json()["decision_id"],
                admins.json()["decision_id"],
                snapshots[OWN],
                snapshots[OTHER],
            )
        finally:
            server.should_exit = True
            thread.join(timeout=15)


def concrete(path: str, w: World, where: str) -> str:
    """The route's path with its parameters filled for a resource of `where` (own / other / missing)."""
    decision = {"own": w.decision, "other": w.foreign, "missing": str(uuid.uuid4())}[where]
    snapshot = {"own": w.snapshot_own, "other": w.snapshot_other, "missing": str(uuid.uuid4())}[where]
    return (
        path.replace("{decision_id}", decision)
        .replace("{snapshot_id}", snapshot)
        .replace(
            "{policy_id}",
            {"own": "policy-block-unbackedup-drops-v1", "other": "pol-refund-002", "missing": "no-such-policy"}[where],
        )
        .replace(
            "{scope_id}",
            {
                "own": "config-management.prod.db-admin-tool",
                "other": "customer-support.prod.chat-api",
                "missing": "config-management.nowhere",
            }[where],
        )
        .replace(
            "{spec_id}",
            "spec-pre-commit-database-drop-table-v1"
            if where == "own"
            else "spec-refund-v1"
            if where == "other"
            else "no-such-spec",
        )
    )


PAUSES = {
    "own": (flat(*LARGE_WRITE), "compliance-review"),
    "other": (
        flat(
            "issue_refund",
            "pre_commit",
            "chatbot-v3",
            "customer:c-1",
            {"has_monetary_value": True, "policy_keyword": "refund", "monetary_amount": 250},
            "chat-api",
            "chatbot-v3",
            domain=OTHER,
        ),
        "compliance-team",
    ),
}
"""A PAUSE in each domain and the requirement an approver satisfies on it."""


def fresh_approval(client: httpx.Client, w: World, where: str, token: str) -> tuple[str, str]:
    """A new pending approval request of `where` (each action resolves one), sent by `token` when it may decide
    there (an agent reads and withdraws only what it sent), else by the admin token."""
    if where == "missing":
        return str(uuid.uuid4()), "compliance-review"
    body, requirement = PAUSES[where]
    body = {**body, "decision_id": str(uuid.uuid4()), "timestamp": datetime.now(UTC).isoformat()}
    sent = client.post("/api/decisions", json=body, headers=bearer(token)) if token else None
    if sent is None or sent.status_code != 201:
        sent = client.post("/api/decisions", json=body, headers=bearer(w.tokens["admin"]))
    assert sent.status_code == 201 and sent.json()["verdict"] == "PAUSE", sent.text
    return sent.json()["approval_request"]["approval_id"], requirement


def request(client: httpx.Client, method: str, path: str, w: World, where: str, token: str) -> httpx.Response:
    url = concrete(path, w, where)
    if "{approval_id}" in path:
        approval_id, requirement = fresh_approval(client, w, where, token)
        url = url.replace("{approval_id}", approval_id)
        if path.endswith("/events"):  # a stream that lasts while the request is pending: its status and headers
            with client.stream("GET", url, headers=bearer(token) if token else {}) as r:
                if r.status_code != 200:
                    r.read()
                return r
        if method == "POST":
            body = {"requirement": requirement} if path.endswith("/approve") else {"reason": "access test"}
            return client.post(url, json=body, headers=bearer(token) if token else {})
    domain = {"own": OWN, "other": OTHER, "missing": MISSING}[where]
    headers = bearer(token) if token else {}
    if method == "GET":
        no_domain = {"/api/organizations", "/api/v1/organizations", "/api/tokens", "/api/v1/tokens", "/migrations"}
        no_domain |= {"/api/domains", "/api/v1/domains"}
        params = {"domain": domain} if "{" not in path and path not in no_domain else {}
        return client.get(url, params=params, headers=headers)
    if path.endswith("/outcome"):
        return client.post(url, json={"outcome": "executed"}, headers=headers)
    if path in ("/api/decisions", "/api/v1/decisions", "/api/decisions/batch", "/api/v1/decisions/batch"):
        body = (
            flat(*CRITICAL_DROP, domain=domain)
            if where != "other"
            else flat("refund.issue", "pre_commit", "a", "t", {}, "svc", "agent", domain=OTHER)
        )
        if path.endswith("/batch"):
            return client.post(url, json={"decisions": [body]}, headers=headers)
        return client.post(url, json=body, headers=headers)
    if path.startswith("/access/"):
        return client.post(url, json={}, headers=headers)
    if path == "/api/shadow":
        return client.post(url, json={"bundle": {}, "organization_id": ORG, "domain": domain}, headers=headers)
    return client.post(url, data={"token": token}, headers=headers)  # /login, /logout


def expected(method: str, path: str, role: str, where: str) -> set[int]:
    """What the rule and the isolation model say: the statuses allowed for (route, role, own/other/missing)."""
    rule = access.rule_for(method, path)
    if rule is access.PUBLIC:
        return {200, 303, 401, 422}
    grants = {
        "agent": {"read", "decide"},
        "approver": {"read", "approve"},
        "reader": {"read"},
        "admin": {"read", "decide", "approve", "admin"},
    }[role]
    if rule.value not in grants:
        return {403}
    sees = where == "own" or (role == "admin" and where == "other")  # the admin token has every domain
    if path.startswith("/access/"):  # AuthZEN: its own body rules; never 401, never another role's 403
        return {200, 400, 403, 404, 422}
    if path == "/api/shadow":
        return {200, 422}
    if path.endswith("/decisions/batch"):  # each decision answers for itself: 201, or 403 outside the token's
        return {200}
    if path in (
        "/migrations",
        "/api/tokens",
        "/api/v1/tokens",
        "/api/organizations",
        "/api/v1/organizations",
    ) or path.endswith("/domains"):
        return {200}  # no domain in the request: only the token's own rows
    if "{" in path:  # addressed by id: 404 for another domain's and for a missing one alike
        return ({201} if method == "POST" else {200}) if sees else {404}
    if not path.startswith("/api"):  # a UI page: the domain "does not exist here", for both
        return {200} if sees else {400}
    if method == "POST":
        return {201} if sees else ({422} if role == "admin" else {403})  # admin: an unknown domain of its org
    return {200} if sees or role == "admin" else {403}


def routes_for_matrix() -> list[tuple[str, str]]:
    return [(m, p) for m, p in app_routes() if access.rule_for(m, p) is not access.PUBLIC]


@pytest.mark.parametrize(("method", "path"), routes_for_matrix(), ids=lambda v: str(v))
def test_every_protected_route_refuses_no_token_and_bad_tokens(world: World, method: str, path: str) -> None:
    with httpx.Client(base_url=world.url, timeout=10) as client:
        for token in ("", "mdt_" + "A" * 43, world.tokens["revoked"], world.tokens["expired"], "Basic abc"):
            r = request(client, method, path, world, "own", token)
            if path.startswith(("/api", "/access")):
                assert r.status_code == 401, (token[:8], r.text)
                assert set(r.json()) == {"error"} and r.headers["www-authenticate"].startswith("Bearer")
                assert r.json()["error"]["code"] in ("unauthenticated", "invalid_token")
            else:  # a UI page: to the login page, the data never shown
                assert r.status_code in (303, 405), r.text
                if r.status_code == 303:
                    assert r.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("role", ["agent", "approver", "reader", "admin"])
@pytest.mark.parametrize(("method", "path"), routes_for_matrix(), ids=lambda v: str(v))
def test_the_matrix_route_role_domain(world: World, method: str, path: str, role: str) -> None:
    with httpx.Client(base_url=world.url, timeout=10) as client:
        answers = {}
        for where in ("own", "other", "missing"):
            r = request(client, method, path, world, where, world.tokens[role])
            answers[where] = r
            assert r.status_code in expected(method, path, role, where), (where, r.status_code, r.text[:300])
            # Never another domain's data.
            if role != "admin" and where != "own" and r.status_code == 200 and path.startswith("/api"):
                assert OTHER not in r.text or path.endswith("/organizations"), r.text[:300]
        # Another domain and one that does not exist: the same answer (the ids differ in the path only).
        if role != "admin" and answers["other"].status_code in (403, 404) and path.startswith("/api"):
            other, missing = answers["other"].json(), answers["missing"].json()
            assert other["error"]["code"] == missing["error"]["code"]
            if "{" not in path:
                assert other == missing


def test_a_token_of_another_organization_sees_nothing_of_this_one(world: World) -> None:
    h = bearer(world.tokens["other-org"])
    with httpx.Client(base_url=world.url, timeout=10, headers=h) as c:
        assert c.get("/api/decisions").json()["items"] == []
        assert c.get("/api/decisions", params={"organization_id": ORG}).status_code == 403
        assert c.get(f"/api/decisions/{world.decision}").status_code == 404
        assert c.post("/api/decisions", json=flat(*CRITICAL_DROP)).status_code == 403
        orgs = c.get("/api/organizations").json()["items"]
        assert [o["organization_id"] for o in orgs] == [OTHER_ORG]


def test_an_agent_reads_only_the_decisions_it_sent(world: World) -> None:
    with httpx.Client(base_url=world.url, timeout=10, headers=bearer(world.tokens["agent"])) as c:
        ids = {i["decision_id"] for i in c.get("/api/decisions", params={"limit": 500}).json()["items"]}
        assert world.decision in ids and world.by_admin not in ids and world.foreign not in ids
        with psycopg.connect(world.database_url) as conn:
            senders = conn.execute(
                "SELECT DISTINCT t.name FROM mandate.decision_events d JOIN mandate.api_tokens t USING (token_id) "
                "WHERE d.decision_id = ANY(%s::uuid[])",
                [sorted(ids)],
            ).fetchall()
        assert senders == [("agent",)]
        assert c.get(f"/api/decisions/{world.by_admin}").status_code == 404
        assert c.get(f"/api/decisions/{world.by_admin}/timeline").status_code == 404
        assert c.post(f"/api/decisions/{world.by_admin}/outcome", json={"outcome": "x"}).status_code == 404
    with httpx.Client(base_url=world.url, timeout=10, headers=bearer(world.tokens["reader"])) as c:
        items = c.get("/api/decisions", params={"limit": 500}).json()["items"]
        assert {world.decision, world.by_admin} <= {i["decision_id"] for i in items}
        assert {i["domain"] for i in items} == {OWN}  # never customer-support's


def test_a_decision_records_the_token_that_sent_it(world: World) -> None:
    with psycopg.connect(world.database_url) as conn:
        agent_id = conn.execute("SELECT token_id::text FROM mandate.api_tokens WHERE name = 'agent'").fetchone()
        stored = conn.execute(
            "SELECT token_id::text FROM mandate.decision_events WHERE decision_id = %s", [world.decision]
        ).fetchone()
    assert agent_id is not None and stored == agent_id
    with httpx.Client(base_url=world.url, timeout=10, headers=bearer(world.tokens["reader"])) as c:
        timeline = c.get(f"/api/decisions/{world.decision}/timeline").json()["entries"]
        assert timeline[0]["details"]["token_id"] == agent_id[0]
        verdict = c.get(f"/api/decisions/{world.decision}/verdict").json()
        assert verdict["token_id"] == agent_id[0]
        page = c.get(f"/decisions/{world.decision}").text
        assert agent_id[0] in page


def test_readers_and_approvers_cannot_write(world: World) -> None:
    for role in ("reader", "approver"):
        with httpx.Client(base_url=world.url, timeout=10, headers=bearer(world.tokens[role])) as c:
            r = c.post("/api/decisions", json=flat(*CRITICAL_DROP))
            assert r.status_code == 403 and f"role {role}" in r.json()["error"]["message"]


def test_the_ui_without_a_cookie_shows_the_login_page_and_a_cookie_logs_in(world: World) -> None:
    with httpx.Client(base_url=world.url, timeout=10) as c:
        r = c.get("/", params={"domain": OWN})
        assert r.status_code == 303 and r.headers["location"] == "/login?next=%2F%3Fdomain%3Dconfig-management"
        login = c.get(r.headers["location"])
        assert login.status_code == 200 and 'name="token"' in login.text
        bad = c.post("/login", data={"token": "mdt_" + "B" * 43, "next": "/"})
        assert bad.status_code == 401 and "set-cookie" not in bad.headers
        ok = c.post("/login", data={"token": world.tokens["reader"], "next": "https://evil.example/"})
        assert ok.status_code == 303 and ok.headers["location"] == "/"  # never an open redirect
        cookie = ok.headers["set-cookie"]
        assert all(flag in cookie for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/")), cookie
        # (a page of 500: the route matrix above sent many decisions of its own)
        page = c.get("/", params={"limit": 500}, headers={"cookie": f"{COOKIE}={world.tokens['reader']}"})
        assert page.status_code == 200 and world.decision in page.text and world.foreign not in page.text
        other = c.get("/", params={"domain": OTHER}, headers={"cookie": f"{COOKIE}={world.tokens['reader']}"})
        assert world.foreign not in other.text and "does not exist here" in other.text
        # The API never reads the cookie.
        assert c.get("/api/decisions", headers={"cookie": f"{COOKIE}={world.tokens['reader']}"}).status_code == 401
        out = c.post("/logout")
        assert out.status_code == 303 and f'{COOKIE}=""' in out.headers["set-cookie"]


def test_bad_tokens_from_one_address_are_slowed_but_a_valid_token_still_passes(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        apply_bundle(conn, load_demo_bundle())
    good = issue_token(db_url)
    server, thread, url = start_server(db_url)
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            statuses = [
                c.get("/api/decisions", headers=bearer(f"mdt_{n:043d}")).status_code for n in range(MAX_FAILURES + 3)
            ]
            assert statuses[:MAX_FAILURES] == [401] * MAX_FAILURES and statuses[-1] == 429
            limited = c.get("/api/decisions", headers=bearer("mdt_" + "C" * 43))
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
            assert c.get("/api/decisions", headers=bearer(good)).status_code == 200  # never locked out
            assert c.get("/api/health").status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_security_headers_on_every_response_and_cors_closed_by_default(world: World) -> None:
    with httpx.Client(base_url=world.url, timeout=10) as c:
        for r in (
            c.get("/api/health"),
            c.get("/api/decisions"),
            c.get("/login"),
            c.get("/static/mandate.css"),
            c.get("/nowhere", headers=bearer(world.tokens["admin"])),
        ):
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["x-frame-options"] == "DENY"
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        preflight = c.options(
            "/api/decisions", headers={"origin": "https://evil.example", "access-control-request-method": "POST"}
        )
        assert "access-control-allow-origin" not in preflight.headers
        health = c.get("/api/health").json()
        assert set(health) <= {
            "status",
            "version",
            "required_schema_version",
            "governance_warnings",
            "database",
            "schema_version",
        }


def test_cors_allows_only_the_configured_origins(db_url: str) -> None:
    server, thread, url = start_server(db_url, cors_origins=("https://console.example.com",))
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            ask = {"access-control-request-method": "POST", "access-control-request-headers": "authorization"}
            ok = c.options("/api/decisions", headers={"origin": "https://console.example.com", **ask})
            assert ok.headers["access-control-allow-origin"] == "https://console.example.com"
            no = c.options("/api/decisions", headers={"origin": "https://evil.example", **ask})
            assert no.headers.get("access-control-allow-origin") != "https://evil.example"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_the_secrets_issued_never_appear_in_responses_the_database_or_the_logs(
    world: World, caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    seen = []
    with httpx.Client(base_url=world.url, timeout=10) as c:
        for secret in world.tokens.values():
            for r in (
                c.get("/api/decisions", headers=bearer(secret)),
                c.get("/api/tokens", headers=bearer(secret)),
                c.post("/login", data={"token": secret}),
                c.get("/openapi.json"),
                c.get("/api/decisions/x", headers=bearer(secret)),
            ):
                body = r.text + "".join(v for k, v in r.headers.items() if k != "set-cookie")
                seen.append(body)
    dump = subprocess.run(["pg_dump", "--data-only", world.database_url], capture_output=True, text=True)
    if dump.returncode != 0:  # no pg_dump on PATH: the one Mandate finds (the embedded server ships one)
        from mandate.db.tools import find

        tool = find("pg_dump", 16)
        dump = subprocess.run(
            [str(tool.path), "--data-only", world.database_url], capture_output=True, text=True, check=True
        )
    assert "api_tokens" in dump.stdout
    logs = caplog.text
    for secret in world.tokens.values():
        body = secret.removeprefix("mdt_")
        assert all(body not in text for text in seen)
        assert body not in dump.stdout
        assert body not in logs
    assert not re.search(r"mdt_[A-Za-z0-9_-]{43}", dump.stdout + logs + "".join(seen))
