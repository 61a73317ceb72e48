"""The application factory: `create_app(database_url)` → the FastAPI app `mandate serve` runs.

Routes: the JSON API (`web/api.py`, its governance reads in `web/api_governance.py`), the read-only UI (`web/ui.py`, its files under `/static`, its login in
`web/login.py`), OpenAPI at `/openapi.json` and its docs page at `/docs`.

Access control wraps every router: `web/auth.py` authenticates each request before routing (on by default;
`auth=False` only for a loopback server, `mandate serve --insecure-no-auth` or `mandate demo`), and
`web/access.authorize`, a dependency of the app itself, applies the route's rule to every route of every router
included here — a router added later is covered without doing anything (docs/security.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import mandate
from mandate.db.connect import use_fast_json
from mandate.db.pool import WAIT_S, ServerPool
from mandate.group_commit import GroupCommit
from mandate.telemetry import from_environment as telemetry_from_environment
from mandate.web import (
    api,
    api_governance,
    apidocs,
    approvals,
    authzen,
    catalog,
    errors,
    login,
    overview,
    shadow,
    tokens,
    ui,
    ui_approvals,
    ui_decision,
    ui_decisions,
    ui_exports,
    ui_governance,
)
from mandate.web.access import authorize
from mandate.web.auth import Authenticate, Failures, Tokens
from mandate.web.errors import BATCH_PATHS, BodyTooLarge, JSONResponse, error_body, printable_text
from mandate.web.headers import SecurityHeaders
from mandate.web.state import ServerState

if TYPE_CHECKING:
    from mandate.telemetry.instruments import Telemetry

log = logging.getLogger("mandate.access")
DEFAULT_MAX_BODY = 256 * 1024
DEFAULT_MAX_BATCH_BODY = 16 * 1024 * 1024  # POST /api/decisions/batch: up to 1,000 decisions
POOL_TIMEOUT_S = WAIT_S  # a request that waits longer for a database connection is answered 503


def create_app(
    database_url: str,
    *,
    pool_size: int = 10,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    max_batch_body_bytes: int = DEFAULT_MAX_BATCH_BODY,
    group_commit: bool = True,
    auth: bool = True,
    cors_origins: tuple[str, ...] = (),
    telemetry: Telemetry | None = None,
    webhook_timing: tuple[float, float] = (2.0, 5.0),
) -> FastAPI:
    """The app. `group_commit`: decisions that wait to be written at the same moment share a transaction
    (mandate.group_commit); off, every decision is written alone. `auth=False` serves everything to everyone (never
    on a non-loopback address: `mandate serve` refuses it). `cors_origins`: the origins that may call the API from
    a browser (none by default). `telemetry`: OpenTelemetry spans and metrics (mandate.telemetry); default: as
    the OTEL_* environment variables configure it, off when they do not. `webhook_timing`: seconds between webhook
    delivery rounds, and the first retry's back-off (doubled on each retry)."""
    otel = telemetry if telemetry is not None else telemetry_from_environment()
    server = _server_state(database_url, pool_size, group_commit, otel, webhook_timing)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()
            if otel is not None:
                otel.flush()

    app = FastAPI(
        title="Mandate",
        version=mandate.__version__,
        description="Governance control plane for AI agents: decisions in, verdicts with explanations out.",
        lifespan=lifespan,
        default_response_class=JSONResponse,
        dependencies=[Depends(authorize)],  # every route of every router, including routers added later
        docs_url=None,  # FastAPI's /docs and /redoc load their files from a CDN: web/apidocs.py serves them
        redoc_url=None,
    )
    app.state.mandate = server
    app.state.tokens = Tokens(server.pool)
    app.state.auth_failures = Failures()
    errors.install(app)
    _include_routes(app)
    _add_middleware(app, auth, max_body_bytes, max_batch_body_bytes, cors_origins, otel)
    return app


def _server_state(
    database_url: str, pool_size: int, group_commit: bool, otel: Telemetry | None, webhook_timing: tuple[float, float]
) -> ServerState:
    """The server's pool, its decision writer (group commit or one decision a transaction) and its state."""
    pool: AsyncConnectionPool[Any] = ServerPool(
        database_url,
        min_size=min(2, pool_size),
        max_size=pool_size,
        timeout=POOL_TIMEOUT_S,
        open=False,
        kwargs={"autocommit": True, "row_factory": dict_row, "application_name": "mandate serve"},
        configure=_configure,
    )
    make_writer = GroupCommit if otel is None else otel.group_commit
    writer = (
        make_writer(pool, max_batch=32, max_writers=max(1, pool_size // 4))
        if group_commit
        else make_writer(pool, max_batch=1, max_writers=pool_size)
    )
    return ServerState(
        database_url, pool, writer, webhook_every_s=webhook_timing[0], webhook_backoff_s=webhook_timing[1]
    )


def _include_routes(app: FastAPI) -> None:
    app.include_router(api.router)
    app.include_router(api_governance.router)
    app.include_router(authzen.router)
    app.include_router(shadow.router)
    app.include_router(tokens.router)
    app.include_router(approvals.router)
    for pages in (ui_decisions, ui_decision, ui_exports, ui_governance):
        app.include_router(pages.router)
    app.include_router(ui_approvals.router)
    app.include_router(overview.router)
    app.include_router(catalog.router)
    app.include_router(login.router)
    apidocs.install(app)  # before /static: its files are under /static/api-docs
    app.mount("/static", StaticFiles(directory=ui.STATIC_DIR), name="static")


def _add_middleware(
    app: FastAPI,
    auth: bool,
    max_body_bytes: int,
    max_batch_body_bytes: int,
    cors_origins: tuple[str, ...],
    otel: Telemetry | None,
) -> None:
    """The middleware, innermost first: authentication, body limits and the access log, gzip, CORS, security
    headers, and the trace a request continues."""
    app.add_middleware(Authenticate, enabled=auth)
    app.add_middleware(LimitAndLog, max_body_bytes=max_body_bytes, max_batch_body_bytes=max_batch_body_bytes)
    app.add_middleware(GZipMiddleware, minimum_size=1024)  # pages, exports and the API docs' scripts
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type"],
        )
    app.add_middleware(SecurityHeaders)
    if otel is not None:
        from mandate.telemetry.instruments import ContinueTrace

        app.add_middleware(ContinueTrace)


async def _configure(conn: Any) -> None:
    use_fast_json(conn)


class LimitAndLog:
    """Refuse oversized bodies (413), and write one structured access-log line per request.

    The limit holds while the body is read, whatever `Content-Length` says or whether the body is chunked: a
    declared length above it is refused before reading; otherwise `receive` counts the bytes and raises
    `BodyTooLarge` (answered 413, connection closed) as soon as they pass it, so no route ever sees more. The
    batch route (`POST /api/decisions/batch`) has its own, larger limit.

    A pure ASGI middleware: Starlette's `@app.middleware("http")` runs every request in an extra task and re-streams
    the response, which cost a third of the server's CPU under load (docs/benchmarks.md).
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_batch_body_bytes: int = DEFAULT_MAX_BATCH_BODY) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_batch_body_bytes = max_batch_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        limit = self.max_batch_body_bytes if scope["path"] in BATCH_PATHS else self.max_body_bytes
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        try:
            if length is not None and (not length.isdigit() or int(length) > limit):
                status = 413
                await _too_large(limit)(scope, receive, send)
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise BodyTooLarge(limit)
                return message

            async def send_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await self.app(scope, limited_receive, send_status)
            except BodyTooLarge:  # raised where no handler turned it into an answer (a route that streams)
                if status != 500:
                    raise
                status = 413
                await _too_large(limit)(scope, receive, send)
        finally:
            # Method, route path, status, duration — never bodies, query values or signal values.
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": printable_text(scope["path"], 200),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                },
            )


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        error_body("too_large", f"request body exceeds {limit} bytes; nothing was stored"),
        status_code=413,
        # The unread body is still on the wire: close the connection rather than reuse it.
        headers={"connection": "close"},
    )
