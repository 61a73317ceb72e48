"""Errors as HTTP answers. Only this package knows status codes; the body always says what was wrong and what
to do, and names the fields:

    {"error": {"code": "...", "message": "...", "problems": [{"field": "...", "code": "...", "message": "..."}]}}

An exception no handler answers reaches `LastResort`: a JSON 500 naming a request id, the traceback logged under
that id, and the connection kept alive.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mandate.db.decisions import BadCursor
from mandate.errors import DatabaseUnavailable, MandateError
from mandate.service import IngestError, Problem, record_rejection

log = logging.getLogger("mandate.server")


class JSONResponse(StarletteJSONResponse):
    """JSON by orjson. A JSONResponse to FastAPI too, so that OpenAPI describes bodies as JSON, not strings."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


class ApiError(MandateError):
    """An HTTP answer other than success, decided by a route: its status, code, message and problems."""

    def __init__(self, status: int, code: str, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.problems = problems or []


def error_body(code: str, message: str, problems: list[Problem] | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "problems": [p.to_dict() for p in problems or []], **extra}}


def printable_text(value: str, limit: int) -> str:
    """`value` with NUL and lone surrogates escaped, cut to `limit` characters: safe to store and to log."""
    safe = value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


def printable(value: Any, limit: int = 200) -> str | None:
    """A safe rendering of whatever a client sent in a field (a string as is, anything else as JSON-ish text)."""
    if value is None:
        return None
    return printable_text(value if isinstance(value, str) else repr(value), limit)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


class BodyTooLarge(StarletteHTTPException):
    """The body grew past the limit while it was read (`app.LimitAndLog`)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds {limit} bytes; nothing was stored")


DECISION_PATHS = ("/api/decisions", "/api/v1/decisions")
BATCH_PATHS = ("/api/decisions/batch", "/api/v1/decisions/batch")
_ATTRIBUTION_ROOTS = frozenset({"organization_id", "domain", "domain_name", "intent", "stage", "decision_id"})
_SCOPE_ATTRIBUTION = frozenset({"organization_id", "domain", "domain_name"})


def _is_attribution(field: str) -> bool:
    head, _, rest = field.partition(".")
    return head in _ATTRIBUTION_ROOTS or (head == "scope" and rest.split(".")[0] in _SCOPE_ATTRIBUTION)


def sqlstate_status(exc: psycopg.Error) -> int:
    """The HTTP status of a database error, by SQLSTATE class (never by exception class alone):

    22 data exception, 54 program limit exceeded → 422 (this request's data cannot be stored);
    23 integrity constraint violation → 409; 57014 query canceled, 08 connection exception, 57P operator
    intervention (shutdown), 53 insufficient resources, 40 transaction rollback → 503 (retry); no SQLSTATE at all
    (the server never answered: connection lost, pool timeout) → 503; anything else → 500.
    """
    state = exc.sqlstate
    if state is None:
        return 503 if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) else 500
    if state.startswith(("22", "54")):
        return 422
    if state.startswith("23"):
        return 409
    if state == "57014" or state.startswith(("08", "57P", "53", "40")):
        return 503
    return 500


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers on this path (for the `Allow` header of a 405)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


class LastResort:
    """The last-resort handler, a pure ASGI middleware: an exception that no handler answered becomes a JSON 500
    (`"code": "internal"`, a `request_id`, also in `x-request-id`), logged once with its traceback and that id.

    It is not raised further: Starlette's own last resort answers in plain text and re-raises, and uvicorn closes
    the connection of every request whose app raised — so one failing request cost the client its keep-alive
    connection. Only when the answer had already begun is there nothing to do but raise (the connection closes).
    A client that went away while its body was read gets no answer and no error line.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except ClientDisconnect:
            log.info(
                "client disconnected", extra={"method": scope["method"], "path": printable_text(scope["path"], 200)}
            )
        except Exception as exc:
            request_id = secrets.token_hex(8)
            log.error(
                "unhandled exception",
                exc_info=exc,
                extra={"request_id": request_id, "method": scope["method"], "path": printable_text(scope["path"], 200)},
            )
            if started:
                raise
            body = error_body(
                "internal",
                f"internal error (request {request_id}): report it with this id; a decision sent again with the "
                "same decision_id is stored at most once",
                request_id=request_id,
            )
            await JSONResponse(body, status_code=500, headers={"x-request-id": request_id})(scope, receive, send)


def validation_problems(errors: Sequence[Mapping[str, Any]]) -> list[Problem] | None:
    """pydantic's errors as our problems (field, code, sentence); None when the body was not JSON at all."""
    problems = []
    for e in errors:
        loc = tuple(e.get("loc", ()))
        kind = str(e.get("type", "invalid"))
        message = str(e.get("msg", "invalid value"))
        if kind == "json_invalid" or (kind == "missing" and loc == ("body",)):
            return None
        if kind == "extra_forbidden":
            message = "unknown field"
        if kind == "string_unicode":  # pydantic's own refusal of a lone surrogate: one code for one rule
            kind, message = "surrogate", "must not contain lone surrogates (\\ud800–\\udfff); send valid Unicode"
        field = _field(loc)
        problems.append(Problem(printable(field, 120) or "body", kind, printable(f"{field}: {message}", 400) or ""))
    return problems


def is_attribution_problem(problems: Sequence[Problem]) -> bool:
    """Whether a decision's problems concern its attribution (§3.1: answered OBSERVE, recorded as a rejection)."""
    return any(_is_attribution(p.field) for p in problems)


def attribution_error(problems: list[Problem]) -> IngestError:
    """A decision whose body names no usable attribution (§3.1: answered OBSERVE, recorded as a rejection)."""
    return IngestError("attribution", "decision attribution is missing or malformed", problems)


def invalid_request(problems: list[Problem]) -> dict[str, Any]:
    return error_body("invalid_request", "the request is invalid; nothing was stored", problems)


INGEST_STATUS = {"attribution": 422, "invalid_signals": 422, "conflict": 409, "not_found": 404}


def ingest_answer(exc: IngestError) -> tuple[int, dict[str, Any]]:
    """The status and body of a refused decision (or outcome)."""
    body = error_body(exc.kind, exc.message, exc.problems)
    body.update(exc.body)
    return INGEST_STATUS[exc.kind], body


def database_answer(exc: psycopg.Error) -> tuple[int, dict[str, Any]]:
    """The status and body of a database error, by SQLSTATE (`sqlstate_status`); a 500 is logged."""
    status = sqlstate_status(exc)
    code = exc.sqlstate or "none"
    if status == 503:
        message = (
            f"the database did not answer ({type(exc).__name__}, SQLSTATE {code}); retry later — a decision sent "
            "again with the same decision_id is stored at most once"
        )
        return 503, error_body("unavailable", message)
    if status == 500:
        log.error("database error", extra={"sqlstate": code, "error": type(exc).__name__})
        return 500, error_body("internal", f"database error (SQLSTATE {code})")
    kind = {409: "conflict", 422: "unstorable"}[status]
    message = f"the database refused this request's data (SQLSTATE {code}, {type(exc).__name__}); nothing was stored"
    return status, error_body(kind, message)


def install(app: FastAPI) -> None:
    app.add_middleware(LastResort)  # innermost of the app's middleware: just outside the routes and their handlers

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> Response:
        return JSONResponse(error_body(exc.code, exc.message, exc.problems), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = validation_problems(exc.errors())
        if problems is None:
            body = error_body(
                "malformed_body",
                "the body is not valid JSON (or is empty); nothing was stored",
                [Problem("body", "malformed_json", "the body is not valid JSON")],
            )
            return JSONResponse(body, status_code=400)
        attribution = any(_is_attribution(p.field) for p in problems)
        if attribution and request.method == "POST" and request.url.path in DECISION_PATHS:
            return await reject_attribution(request, exc.body, attribution_error(problems))
        return JSONResponse(invalid_request(problems), status_code=422)

    @app.exception_handler(IngestError)
    async def ingest_error(_request: Request, exc: IngestError) -> Response:
        status, body = ingest_answer(exc)
        return JSONResponse(body, status_code=status)

    @app.exception_handler(BadCursor)
    async def bad_cursor(_request: Request, exc: BadCursor) -> Response:
        return JSONResponse(
            error_body("invalid_request", str(exc), [Problem("cursor", "malformed", str(exc))]), status_code=400
        )

    @app.exception_handler(DatabaseUnavailable)
    async def db_down(_request: Request, exc: DatabaseUnavailable) -> Response:
        return JSONResponse(error_body("unavailable", str(exc)), status_code=503, headers={"retry-after": "1"})

    @app.exception_handler(psycopg.Error)
    async def db_error(_request: Request, exc: psycopg.Error) -> Response:
        status, body = database_answer(exc)
        return JSONResponse(body, status_code=status, headers={"retry-after": "1"} if status == 503 else None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {
            400: "malformed_body",
            404: "not_found",
            405: "method_not_allowed",
            413: "too_large",
            415: "unsupported_media_type",
        }.get(exc.status_code, "http_error")
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        if exc.status_code == 405:
            headers["allow"] = ", ".join(_allowed_methods(request))
        if exc.status_code == 413:
            headers["connection"] = "close"  # the rest of the body is still on the wire
        if exc.status_code == 404 and _wants_a_page(request):
            from mandate.web.ui import not_found  # the UI imports this module

            return not_found(
                f"There is no page at {printable_text(request.url.path, 200)}.",
                "The address may be mistyped, or the page moved: the decisions, scopes and specs are in the menu.",
            )
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=headers)


def _wants_a_page(request: Request) -> bool:
    """A browser asking for a page (not the API, not a program that asked for JSON)."""
    path = request.url.path
    accept = request.headers.get("accept", "")
    return not path.startswith("/api/") and path != "/api" and "text/html" in accept


async def reject_attribution(request: Request, sent: Any, exc: IngestError) -> JSONResponse:
    """§3.1: malformed or unknown attribution → 422 with verdict OBSERVE, recorded in the rejection log."""
    return JSONResponse(await rejection(request, sent, exc), status_code=422)


async def rejection(request: Request, sent: Any, exc: IngestError) -> dict[str, Any]:
    """Record an attribution rejection (§3.1) of the decision body `sent`; the body of its 422 (verdict OBSERVE)."""
    body: dict[str, Any] = sent if isinstance(sent, dict) else {}
    scope: dict[str, Any] = body["scope"] if isinstance(body.get("scope"), dict) else {}
    fields = {
        "decision_id": body.get("decision_id"),
        "organization_id": body.get("organization_id", scope.get("organization_id")),
        "domain": body.get("domain", body.get("domain_name", scope.get("domain", scope.get("domain_name")))),
        "intent": body.get("intent"),
        "stage": body.get("stage"),
    }
    async with request.app.state.mandate.pool.connection() as conn:
        await record_rejection(conn, exc, {k: printable(v) for k, v in fields.items()})
    answer = error_body(exc.kind, exc.message, exc.problems)
    answer["verdict"] = "OBSERVE"
    answer["decision_id"] = printable(fields["decision_id"])
    return answer
