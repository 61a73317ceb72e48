"""Errors as HTTP answers. Only this package knows status codes; the body always says what was wrong and what
to do, and names the fields:

    {"error": {"code": "...", "message": "...", "problems": [{"field": "...", "code": "...", "message": "..."}]}}
"""

from __future__ import annotations

from typing import Any

import orjson
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mandate.db.decisions import BadCursor
from mandate.errors import DatabaseUnavailable
from mandate.service import IngestError, Problem


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.problems = problems or []


def error_body(code: str, message: str, problems: list[Problem] | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "problems": [p.to_dict() for p in problems or []], **extra}}


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> Response:
        return JSONResponse(error_body(exc.code, exc.message, exc.problems), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for e in exc.errors():
            loc = tuple(e.get("loc", ()))
            kind = str(e.get("type", "invalid"))
            message = str(e.get("msg", "invalid value"))
            if kind == "json_invalid":
                problems.append(Problem("body", "malformed_json", "the body is not valid JSON"))
                continue
            if kind == "extra_forbidden":
                message = "unknown field"
            problems.append(Problem(_field(loc), kind, f"{_field(loc)}: {message}"))
        return JSONResponse(
            error_body("invalid_request", "the request is invalid; nothing was stored", problems), status_code=422
        )

    @app.exception_handler(IngestError)
    async def ingest_error(_request: Request, exc: IngestError) -> Response:
        status = {"attribution": 422, "invalid_signals": 422, "conflict": 409, "not_found": 404}[exc.kind]
        body = error_body(exc.kind, exc.message, exc.problems)
        body.update(exc.body)
        return JSONResponse(body, status_code=status)

    @app.exception_handler(BadCursor)
    async def bad_cursor(_request: Request, exc: BadCursor) -> Response:
        return JSONResponse(
            error_body("invalid_request", str(exc), [Problem("cursor", "malformed", str(exc))]), status_code=400
        )

    @app.exception_handler(DatabaseUnavailable)
    async def db_down(_request: Request, exc: DatabaseUnavailable) -> Response:
        return JSONResponse(error_body("unavailable", str(exc)), status_code=503)

    @app.exception_handler(psycopg.OperationalError)  # lost connection, pool timeout, server shutting down …
    async def db_error(_request: Request, exc: psycopg.OperationalError) -> Response:
        message = (
            f"the database did not answer ({type(exc).__name__}); retry later — a decision sent again with the same "
            "decision_id is stored at most once"
        )
        return JSONResponse(error_body("unavailable", message), status_code=503)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)
