"""What the server accepts: one check for every string that arrives (body, query, path) and for timestamps.

MANDATE.md §3a ("Strings", "Time"); nothing that PostgreSQL cannot store may reach it:

- no NUL (U+0000) anywhere, keys of JSON objects included: PostgreSQL's text and jsonb cannot hold it;
- no lone surrogates (U+D800–U+DFFF, which JSON's `\\udfff` escapes can produce): UTF-8 cannot encode them;
- at most the documented number of **bytes** in UTF-8 (a character can take four);
- JSON documents (`context`, `details`) at most `MAX_DEPTH` levels deep;
- timestamps are RFC 3339 strings with an offset (never numbers), converted to UTC here, at the edge, and
  within 1970-01-01T00:00:00Z … 9999-12-30T23:59:59.999999Z.

A body field that breaks a rule fails pydantic validation with the codes below (answered 422 naming the field);
a query or path parameter fails `check_parameters`, a dependency of every router.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar, get_type_hints

import fastapi.routing
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, BeforeValidator, ValidationError
from pydantic_core import PydanticCustomError

from mandate.service import Problem
from mandate.web.access import authorize
from mandate.web.errors import ApiError, printable_text

BodyT = TypeVar("BodyT", bound=BaseModel)
MAX_DEPTH = 32
MAX_PARAMETER_BYTES = 4096
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, tzinfo=UTC)  # exclusive: 9999-12-30 is the last day accepted
_SURROGATE = re.compile("[\ud800-\udfff]")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def text_problem(value: str, max_bytes: int | None = None) -> tuple[str, str] | None:
    """(code, sentence) when `value` cannot be stored as text, else None."""
    if "\x00" in value:
        return "nul_character", "must not contain NUL (\\u0000)"
    if _SURROGATE.search(value):
        return "surrogate", "must not contain lone surrogates (\\ud800–\\udfff); send valid Unicode"
    if max_bytes is not None and len(value) * 4 > max_bytes and len(value.encode()) > max_bytes:
        return "too_long", f"must be at most {max_bytes} bytes in UTF-8"
    return None


def bounded(max_bytes: int) -> AfterValidator:
    """Annotate a string field: at most `max_bytes` UTF-8 bytes, without NUL or lone surrogates."""

    def check(value: str | None) -> str | None:
        problem = None if value is None else text_problem(value, max_bytes)
        if problem is not None:
            raise PydanticCustomError(problem[0], problem[1])
        return value

    return AfterValidator(check)


def document_problem(value: Any, path: str) -> tuple[str, str] | None:
    """(code, sentence naming the path) for the first thing in a JSON document PostgreSQL cannot store."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            return "too_deep", f"{path} must be at most {MAX_DEPTH} levels deep"
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                return problem[0], f"{where} {problem[1]}"
        elif isinstance(item, float) and not math.isfinite(item):
            return "not_finite", f"{where}: numbers must be finite (NaN and Infinity are not JSON)"
        elif isinstance(item, int) and not isinstance(item, bool) and not -(2**63) <= item < 2**63:
            return (
                "too_large",
                f"{where}: integers must fit in 64 bits (between -2^63 and 2^63-1); send larger ones as strings",
            )
        elif isinstance(item, dict):
            for key, child in item.items():
                problem = text_problem(str(key))
                if problem is not None:
                    return problem[0], f"a key of {where} {problem[1]}"
                stack.append((child, f"{where}.{printable_text(str(key), 40)}", depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))
    return None


def storable(name: str) -> AfterValidator:
    """Annotate a JSON-object field that jsonb must be able to store; `name` is the field's name in messages."""

    def check(value: dict[str, Any]) -> dict[str, Any]:
        problem = document_problem(value, name)
        if problem is not None:
            raise PydanticCustomError(problem[0], problem[1])
        return value

    return AfterValidator(check)


def _rfc3339(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise PydanticCustomError(
            "timestamp_format", "must be an RFC 3339 date-time string with an offset, e.g. 2026-01-31T12:00:00Z"
        )
    return value


def to_utc(value: datetime) -> datetime:
    """`value` (with an offset) in UTC, within the range the database can give back; PydanticCustomError if not."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError("timezone_missing", "must include a time zone offset, e.g. Z or +02:00")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise PydanticCustomError(
            "out_of_range", "must lie between 1970-01-01T00:00:00Z and 9999-12-30T23:59:59Z (in UTC)"
        )
    return utc


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(to_utc)]


async def check_parameters(request: Request) -> None:
    """Every query parameter (name and value) and path parameter: no NUL, no lone surrogates, bounded bytes."""
    problems = []
    items = [*request.query_params.multi_items(), *((k, str(v)) for k, v in request.path_params.items())]
    for name, value in items:
        for text in (name, value):
            problem = text_problem(text, MAX_PARAMETER_BYTES)
            if problem is not None:
                shown = printable_text(name, 64)
                problems.append(Problem(shown, problem[0], f"parameter {shown} {problem[1]}"))
                break
    if problems:
        raise ApiError(422, "invalid_request", "a parameter cannot be accepted; nothing was read", problems)


JSON_TYPES = re.compile(r"^application/(?:[\w.+-]+\+)?json\s*(?:;.*)?$", re.IGNORECASE)


async def require_json(request: Request) -> None:
    """POST bodies are JSON: another declared content type is answered 415 (none at all is read as JSON)."""
    kind = request.headers.get("content-type")
    if kind is not None and not JSON_TYPES.match(kind.strip()):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"the body must be JSON: send Content-Type: application/json (got {printable_text(kind, 64)})",
            [Problem("content-type", "unsupported", "Content-Type must be application/json")],
        )


async def read_json_body(request: Request, model: type[BodyT]) -> BodyT:
    """`request`'s body as `model`, failing as a FastAPI-declared body fails (the same exception handlers answer):
    `RequestValidationError` for an empty body or one that is not JSON (400) and for one that breaks the model
    (422, each error's location under `body`). The JSON is read by the standard library, as FastAPI does, so that
    what a body may hold (NaN, escaped lone surrogates, which the model then refuses) is the same on every route.
    The content type is `require_json`'s to check."""
    raw = await request.body()
    if not raw:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    try:
        data = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, or bytes that are no Unicode text at all
        position = exc.pos if isinstance(exc, json.JSONDecodeError) else 0
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body", position), "msg": "JSON decode error", "input": {}}]
        ) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors, body=data) from None


class JsonBodyRoute(fastapi.routing.APIRoute):
    """A route whose endpoint is `(request, body: <a pydantic model>)` and whose dependencies each take only the
    request (the app's `authorize`, `check_parameters`, `require_json`), answered without FastAPI's generic
    dependency machinery: each dependency in order, then `read_json_body`, then the endpoint. FastAPI still reads
    the declared signature for the OpenAPI document, which describes the route as for any other. The ingestion
    route spent about a tenth of the server's CPU in that machinery (docs/benchmarks.md). A route that does not fit
    (another parameter, a dependency with parameters of its own, no `require_json`) is refused when it is built,
    and one served without `authorize` refuses every request (403); tests/web/test_access.py checks every route's
    access rule on the served app, these included."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if list(inspect.signature(endpoint).parameters) != ["request", "body"]:
            raise TypeError(f"{path}: a JsonBodyRoute endpoint takes (request, body)")
        self.body_model: type[BaseModel] = get_type_hints(endpoint)["body"]
        super().__init__(path, endpoint, **kwargs)  # builds the handler (get_route_handler)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        # The dependant FastAPI serves this route with: with the app's and the including router's dependencies
        # (recent FastAPI versions pass them through a context variable while they build the handler of an
        # included route; earlier ones copy the route with them). Fails closed: a handler built without the app's
        # `authorize` among them (a FastAPI that passed them some other way) refuses every request.
        effective = getattr(fastapi.routing, "_effective_route_context_var", None)
        context = None if effective is None else effective.get()
        dependant = context.dependant if context is not None and context.original_route is self else self.dependant
        checks = []
        for dependency in dependant.dependencies:
            call = dependency.call
            if call is None or dependency.dependencies or list(inspect.signature(call).parameters) != ["request"]:
                raise TypeError(f"{self.path}: a JsonBodyRoute dependency takes the request only ({call})")
            checks.append(call)
        if require_json not in checks:
            raise TypeError(f"{self.path}: a JsonBodyRoute reads JSON: it needs the require_json dependency")
        endpoint, model, authorized = self.endpoint, self.body_model, authorize in checks

        async def handle(request: Request) -> Response:
            if not authorized:
                raise ApiError(
                    403, "forbidden", f"{self.path} was built without the app's access rule; nobody may call it"
                )
            for check in checks:
                await check(request)
            response: Response = await endpoint(request, await read_json_body(request, model))
            return response

        return handle
