"""The application factory: `create_app(database_url)` → the FastAPI app `mandate serve` runs.

Routes: the JSON API (`web/api.py`), the read-only UI (`web/ui.py`, its files under `/static`), OpenAPI at
`/openapi.json` and its docs page at `/docs`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

import mandate
from mandate.web import api, errors, ui
from mandate.web.errors import JSONResponse, error_body
from mandate.web.state import ServerState

log = logging.getLogger("mandate.access")
DEFAULT_MAX_BODY = 256 * 1024


def create_app(database_url: str, *, pool_size: int = 10, max_body_bytes: int = DEFAULT_MAX_BODY) -> FastAPI:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        database_url,
        min_size=min(2, pool_size),
        max_size=pool_size,
        open=False,
        kwargs={"autocommit": True, "row_factory": dict_row, "application_name": "mandate serve"},
    )
    server = ServerState(database_url, pool)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    app = FastAPI(
        title="Mandate",
        version=mandate.__version__,
        description="Governance control plane for AI agents: decisions in, verdicts with explanations out.",
        lifespan=lifespan,
        default_response_class=JSONResponse,
    )
    app.state.mandate = server
    errors.install(app)
    app.include_router(api.router)
    app.include_router(ui.router)
    app.mount("/static", StaticFiles(directory=ui.STATIC_DIR), name="static")

    @app.middleware("http")
    async def limit_and_log(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body_bytes):
            response: Response = JSONResponse(
                error_body("too_large", f"request body exceeds {max_body_bytes} bytes; nothing was stored"),
                status_code=413,
                # The unread body is still on the wire: close the connection rather than reuse it.
                headers={"connection": "close"},
            )
        else:
            response = await call_next(request)
        # Structured access log: method, route path, status, duration — never bodies, query values or signals.
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.url.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            },
        )
        return response

    return app
