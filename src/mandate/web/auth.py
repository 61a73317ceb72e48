"""Authentication: every request but the public ones carries a valid API token, checked before routing.

`Authenticate` (a pure ASGI middleware) reads `Authorization: Bearer mdt_…` — or, outside `/api`, the UI's
`mandate_token` cookie — looks the token's SHA-256 up (`Tokens`, a per-process cache whose entries live at most one
second, so a revocation reaches every worker within a second), checks its expiry against the clock on every request,
and puts the token's `Principal` in the request's state for `web/access.py` to authorize. Otherwise it answers:

- 401 `unauthenticated` (no token) or `invalid_token` (unknown, revoked or expired: one message for the three) on
  the API, with `WWW-Authenticate: Bearer`; a redirect to `/login` for a UI page;
- 429 with `Retry-After` once an address has sent `MAX_FAILURES` bad tokens within `WINDOW_S` seconds — only for
  bad tokens: a valid token from the same address is still served, so nobody locks a valid user out;
- 503 when the database cannot be asked.

Public paths (`PUBLIC_PATHS`, `/static/…`) need no token. With authentication off (`enabled=False`, only on a
loopback address: `mandate serve --insecure-no-auth`, `mandate demo`) every request gets `Principal.local()`.
The secret is never logged, stored or echoed; only its hash is compared (an index lookup of a SHA-256, so timing
says nothing about the secret), and `hmac.compare_digest` double-checks the row found.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from collections import OrderedDict, deque
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.types import ASGIApp, Receive, Scope, Send

from mandate.db import tokens as tq
from mandate.tokens import Principal, digest, well_formed
from mandate.web.errors import JSONResponse, error_body

log = logging.getLogger("mandate.server")

COOKIE = "mandate_token"
PUBLIC_PATHS = frozenset({"/api/health", "/api/v1/health", "/login", "/logout", "/docs", "/redoc", "/openapi.json"})
PUBLIC_PREFIXES = ("/static/",)
CACHE_TTL_S = 1.0
MAX_FAILURES = 20
WINDOW_S = 60.0
MAX_ADDRESSES = 10_000


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class Tokens:
    """Token lookups by hash, each remembered for at most `CACHE_TTL_S` seconds in this process."""

    def __init__(self, pool: AsyncConnectionPool[Any], ttl_s: float = CACHE_TTL_S) -> None:
        self.pool = pool
        self.ttl_s = ttl_s
        self._cache: dict[bytes, tuple[float, bytes, Principal | None]] = {}

    async def principal(self, secret: str) -> Principal | None:
        """The principal of a valid secret; None when it is malformed, unknown, revoked or expired."""
        if not well_formed(secret):
            return None
        hashed = digest(secret)
        now = time.monotonic()
        cached = self._cache.get(hashed)
        if cached is not None and now - cached[0] < self.ttl_s and hmac.compare_digest(cached[1], hashed):
            found = cached[2]
        else:
            async with self.pool.connection() as conn:
                found = await tq.lookup(conn, hashed)
            if len(self._cache) >= MAX_ADDRESSES:
                self._cache.clear()
            self._cache[hashed] = (now, hashed, found)
        if found is None or found.expired(datetime.now(UTC)):
            return None
        return found


class Failures:
    """Bad tokens per client address in a sliding window, for at most `MAX_ADDRESSES` addresses."""

    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def record(self, address: str) -> int | None:
        """Count a bad token from `address`; the seconds it must wait (for 429's Retry-After), or None."""
        now = time.monotonic()
        times = self._seen.pop(address, None) or deque()
        while times and now - times[0] >= self.window_s:
            times.popleft()
        times.append(now)
        self._seen[address] = times
        while len(self._seen) > MAX_ADDRESSES:
            self._seen.popitem(last=False)
        if len(times) <= self.max_failures:
            return None
        return max(1, math.ceil(self.window_s - (now - times[-self.max_failures - 1])))


def _secret(scope: Scope) -> str | None:
    """The bearer token of the request, or for a UI path its cookie."""
    for key, value in scope["headers"]:
        if key == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            return credentials.strip() if scheme.lower() == "bearer" else ""
    if scope["path"].startswith("/api"):
        return None
    for key, value in scope["headers"]:
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                name, _, cookie = part.strip().partition("=")
                if name == COOKIE:
                    return str(cookie)
    return None


class Authenticate:
    def __init__(self, app: ASGIApp, *, enabled: bool = True) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if not self.enabled:
            state["principal"] = Principal.local()
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if is_public(path):
            await self.app(scope, receive, send)
            return
        secret = _secret(scope)
        if not secret:
            await self._refuse(
                scope,
                receive,
                send,
                "unauthenticated",
                "a valid API token is required: send Authorization: Bearer mdt_… (mandate token create issues one)",
            )
            return
        tokens: Tokens = scope["app"].state.tokens
        try:
            found = await tokens.principal(secret)
        except (PoolTimeout, OSError) as exc:
            await _unavailable(type(exc).__name__)(scope, receive, send)
            return
        except Exception as exc:  # a database error while looking the token up: the client may retry
            if not type(exc).__module__.startswith("psycopg"):
                raise
            await _unavailable(type(exc).__name__)(scope, receive, send)
            return
        if found is None:
            client = scope.get("client")
            failures: Failures = scope["app"].state.auth_failures
            wait = failures.record(client[0] if client else "unknown")
            if wait is not None:
                body = error_body("too_many_attempts", f"too many bad tokens from this address; retry in {wait} s")
                await JSONResponse(body, status_code=429, headers={"retry-after": str(wait)})(scope, receive, send)
                return
            await self._refuse(scope, receive, send, "invalid_token", "the token is unknown, revoked or expired")
            return
        state["principal"] = found
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, code: str, message: str) -> None:
        path = scope["path"]
        if not path.startswith("/api") and scope["method"] in ("GET", "HEAD"):
            query = scope.get("query_string", b"").decode("latin-1")
            target = path + ("?" + query if query else "")
            response = JSONResponse(
                error_body(code, message + "; log in at /login"),
                status_code=303,
                headers={"location": "/login?next=" + quote(target, safe="")},
            )
            if code == "invalid_token":  # a revoked or expired cookie: forget it
                response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
            await response(scope, receive, send)
            return
        challenge = 'Bearer realm="mandate"' + (', error="invalid_token"' if code == "invalid_token" else "")
        await JSONResponse(error_body(code, message), status_code=401, headers={"www-authenticate": challenge})(
            scope, receive, send
        )


def _unavailable(kind: str) -> JSONResponse:
    return JSONResponse(
        error_body("unavailable", f"the token could not be checked: the database did not answer ({kind}); retry"),
        status_code=503,
        headers={"retry-after": "1"},
    )
