"""Experiments on the server, measured against the server as shipped in the same run (`python -m bench variants`):
each variant is `mandate serve` with one change made from outside, so that a proposal for src/ comes with its
measured gain before anyone edits src/ (or, once made, its gain is still shown side by side).

- `swap-middleware`: the access-log/body-limit middleware of `web/app.py` in the other style — as a pure ASGI
  class when the shipped app uses `@app.middleware("http")` (Starlette's BaseHTTPMiddleware, which runs every
  request in an extra task and re-streams the response), or back as `@app.middleware("http")` when the shipped app
  has the pure ASGI class. The results record which.
- `uvloop+httptools` / `asyncio+h11`: uvicorn's event loop and HTTP parser the other way round from the shipped
  install — the C ones (`uvicorn[standard]`, installed for the run into a separate directory) when they are not
  installed, the pure-Python ones when they are (`mandate serve` lets uvicorn pick: "auto").
- `stdlib-json`: json/jsonb parameters serialised by the standard library's `json` (psycopg's default) instead of
  orjson (`mandate.db.connect.use_fast_json`, installed on every pooled connection).
- `no-group-commit`: every decision written in its own transaction (`create_app(..., group_commit=False)`) instead
  of the decisions waiting at the same moment sharing one (mandate.group_commit).
- `1-worker`: one server process instead of one per core (`mandate serve --workers 1`, the command's default).
- `fastapi-body`: the ingestion routes served by FastAPI's own request handler (its dependency machinery, the body
  declared and validated as a parameter) instead of `web.inputs.JsonBodyRoute`, which runs their checks, body and
  endpoint directly.
- `one-statement-each`: a group-commit batch written as one statement per decision stage, pipelined (as before
  round 2 of issue 20), instead of one multi-row statement for its plain stages (`db.writes.insert_decisions`).
- `stage-read-each`: every `executed` stage reads the stored stages of its decision on a pooled connection of its
  own (as before round 2's fourth session) instead of through the server's `service.StageReader`, which reads
  those of concurrent `executed` stages in one query.
- `granian`: the same app served by granian (a Rust HTTP server, ASGI interface, installed for the run into a
  separate directory) instead of uvicorn, with as many worker processes.

Every variant but `1-worker` runs in as many uvicorn worker processes as the benchmarks' shipped server
(`MANDATE_BENCH_WORKERS`, one per core), each building its app with `factory()`.

Run as `python -m bench.variants VARIANT HOST PORT` with DATABASE_URL set; bench/ingest.py starts it.
"""

import os
import sys
import time
from typing import Any

VARIANTS = (
    "baseline",
    "swap-middleware",
    "uvloop+httptools",
    "asyncio+h11",
    "stdlib-json",
    "no-group-commit",
    "1-worker",
    "granian",
    "fastapi-body",
    "one-statement-each",
    "stage-read-each",
)


def has_fast_loop() -> bool:
    """Whether uvloop and httptools are installed, so that `mandate serve` (uvicorn's "auto") runs on them."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("uvloop", "httptools"))


def chosen() -> list[str]:
    """The variants that make sense for this install: the loop/parser swap goes the other way from what is shipped.
    `MANDATE_BENCH_VARIANTS` (names joined by commas) measures only those, against the baseline."""
    swap = "asyncio+h11" if has_fast_loop() else "uvloop+httptools"
    names = [v for v in VARIANTS if v not in ("uvloop+httptools", "asyncio+h11") or v == swap]
    only = [v for v in os.environ.get("MANDATE_BENCH_VARIANTS", "").split(",") if v]
    if unknown := [v for v in only if v not in VARIANTS]:
        raise SystemExit(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    return [v for v in names if not only or v == "baseline" or v in only]


Scope = dict[str, Any]


class LimitAndLog:
    """What `limit_and_log` in web/app.py does, as plain ASGI: refuse bodies over the limit, log method, path,
    status and duration."""

    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        import logging

        self.log = logging.getLogger("mandate.access")

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            from mandate.web.errors import JSONResponse, error_body

            response = JSONResponse(
                error_body("too_large", f"request body exceeds {self.max_body_bytes} bytes; nothing was stored"),
                status_code=413,
                headers={"connection": "close"},  # the unread body is still on the wire
            )
            await response(scope, receive, send)
            status[0] = 413
        else:

            async def send_status(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            await self.app(scope, receive, send_status)
        self.log.info(
            "request",
            extra={
                "method": scope["method"],
                "path": scope["path"],
                "status": status[0],
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            },
        )


def shipped_middleware() -> str:
    """Which access-log middleware `create_app` installs: "pure ASGI" or "@app.middleware('http')"."""
    from starlette.middleware.base import BaseHTTPMiddleware

    from mandate.web.app import create_app

    app = create_app("postgresql://unused@localhost/unused")
    uses_base = any(m.cls is BaseHTTPMiddleware for m in app.user_middleware)
    return "@app.middleware('http')" if uses_base else "pure ASGI"


def build(variant: str, database_url: str) -> Any:
    from starlette.middleware.base import BaseHTTPMiddleware

    if variant == "fastapi-body":  # before the app is built: FastAPI builds the routes' handlers then
        import fastapi.routing

        from mandate.web.inputs import JsonBodyRoute

        JsonBodyRoute.get_route_handler = fastapi.routing.APIRoute.get_route_handler  # type: ignore[method-assign]

    if variant == "one-statement-each":
        import mandate.group_commit

        mandate.group_commit._statements = lambda prepared: [[i] for i in range(len(prepared))]

    if variant == "stage-read-each":
        import mandate.web.state

        def no_reader(state: Any) -> None:
            state.stages = None  # service.submit then reads on a connection of its own

        mandate.web.state.ServerState.__post_init__ = no_reader  # type: ignore[method-assign,assignment]

    from mandate.web.app import DEFAULT_MAX_BODY, create_app

    app = create_app(database_url, group_commit=variant != "no-group-commit", auth=False)  # loopback, as measured
    if variant == "stdlib-json":
        app.state.mandate.pool._configure = None  # the pool's connection set-up, where orjson is installed
    if variant == "swap-middleware":
        if any(m.cls is BaseHTTPMiddleware for m in app.user_middleware):
            app.user_middleware = [m for m in app.user_middleware if m.cls is not BaseHTTPMiddleware]
            app.add_middleware(LimitAndLog, max_body_bytes=DEFAULT_MAX_BODY)
        else:
            app.user_middleware = [m for m in app.user_middleware if getattr(m.cls, "__name__", "") != "LimitAndLog"]
            _add_http_middleware(app, DEFAULT_MAX_BODY)
    return app


def _add_http_middleware(app: Any, max_body_bytes: int) -> None:
    """The access-log middleware as web/app.py had it before: `@app.middleware("http")`."""
    import logging

    from mandate.web.errors import JSONResponse, error_body

    log = logging.getLogger("mandate.access")

    @app.middleware("http")
    async def limit_and_log(request: Any, call_next: Any) -> Any:
        started = time.perf_counter()
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body_bytes):
            response = JSONResponse(
                error_body("too_large", f"request body exceeds {max_body_bytes} bytes; nothing was stored"),
                status_code=413,
                headers={"connection": "close"},
            )
        else:
            response = await call_next(request)
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


def factory() -> Any:
    """The app of one uvicorn worker process: they import it by name and learn the variant from the environment."""
    return build(os.environ["MANDATE_BENCH_VARIANT"], os.environ["DATABASE_URL"])


def main() -> None:
    variant, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant}; one of {', '.join(VARIANTS)}")
    import uvicorn

    from mandate.web import logs
    from mandate.web.serve import check_schema

    url = os.environ["DATABASE_URL"]
    check_schema(url)
    loop, http = ("uvloop", "httptools") if variant == "uvloop+httptools" else ("auto", "auto")
    if variant == "asyncio+h11":
        loop, http = "asyncio", "h11"
    workers = 1 if variant == "1-worker" else int(os.environ.get("MANDATE_BENCH_WORKERS", "1"))
    os.environ["MANDATE_BENCH_VARIANT"] = variant
    if variant == "granian":
        serve_with_granian(host, port, workers)
        return
    uvicorn.run(
        "bench.variants:factory" if workers > 1 else build(variant, url),
        factory=workers > 1,
        workers=workers,
        host=host,
        port=port,
        log_config=logs.configure("INFO"),
        timeout_graceful_shutdown=10,
        access_log=False,
        loop=loop,  # type: ignore[arg-type]  # one of uvicorn's literal names
        http=http,  # type: ignore[arg-type]  # one of uvicorn's literal names
    )


def serve_with_granian(host: str, port: int, workers: int) -> None:
    """`factory()` under granian's ASGI interface (its own process manager: `workers` processes)."""
    from granian import Granian  # type: ignore[import-not-found]  # installed for the run only
    from granian.constants import Interfaces  # type: ignore[import-not-found]

    from mandate.web import logs

    Granian(
        "bench.variants:factory",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        factory=True,
        log_access=False,
        log_dictconfig=logs.configure("INFO"),
    ).serve()


if __name__ == "__main__":
    main()
