"""The HTTP wire, shared by the sync and async clients: request bodies, answers → values or typed errors, and the
retry policy. No I/O happens here.

Retries. A request is sent at most `retries + 1` times, with exponential backoff and jitter between attempts.

- Idempotent requests (every GET, and `POST /api/decisions`, which the server deduplicates on (decision_id, stage)
  — the client fixes the decision_id before the first attempt) are retried on any connection error, timeout or
  dropped connection, and on 502/503/504.
- Outcome reports are not idempotent (each one appends a timeline entry), so they are retried only when the request
  certainly did not reach the server: a refused connection, a connect or pool timeout, or a 503.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx

from mandate import __version__
from mandate.client._exceptions import (
    MandateAPIError,
    MandateConflict,
    MandateError,
    MandateNotFound,
    MandateUnavailable,
    MandateValidationError,
    Problem,
)
from mandate.client._verdict import Verdict

USER_AGENT = f"mandate-python/{__version__}"
RETRY_STATUSES = frozenset({502, 503, 504})
DEFAULT_TIMEOUT_S = 15.0
"""Per attempt: longer than the server's own bound (10 s while its database is down, docs/reliability.md), so a
client sees the server's 503 — and retries it — rather than a timeout of its own."""
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class RetryPolicy:
    """`retries` extra attempts after the first; the n-th wait is `backoff * 2**(n-1)`, capped, times [0.5, 1)."""

    retries: int = 2
    backoff: float = 0.25
    max_backoff: float = 5.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be 0 or more")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("backoff and max_backoff must not be negative")

    @property
    def attempts(self) -> int:
        return self.retries + 1

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (1-based); a server's Retry-After wins, within the cap."""
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        base = min(self.backoff * 2.0 ** (retry - 1), self.max_backoff)
        return base * (0.5 + random.random() / 2)  # jitter, not cryptography


def retryable_exception(exc: httpx.TransportError, *, idempotent: bool) -> bool:
    if isinstance(exc, _NOT_SENT):
        return True
    return idempotent and isinstance(exc, _TRANSIENT)


def retryable_status(status: int, *, idempotent: bool) -> bool:
    return status in RETRY_STATUSES if idempotent else status == 503


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def unreachable(exc: httpx.TransportError, url: str, attempts: int) -> MandateUnavailable:
    kind = type(exc).__name__
    return MandateUnavailable(
        f"Mandate at {url} could not be reached ({kind}: {exc or 'no detail'}) after {attempts} attempt"
        f"{'' if attempts == 1 else 's'}; check that the server runs (`mandate serve`) and the URL is right"
    )


TOKEN_VARIABLE = "MANDATE_API_TOKEN"


def headers(token: str | None) -> dict[str, str]:
    """Every request's headers; the token is `token`, else the MANDATE_API_TOKEN environment variable."""
    h = {"user-agent": USER_AGENT, "accept": "application/json"}
    if token is None:
        token = os.environ.get(TOKEN_VARIABLE) or None
    if token:
        h["authorization"] = f"Bearer {token}"
    return h


def answer(response: httpx.Response) -> Any:
    """The JSON of a successful answer, or the typed error for an unsuccessful one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success:
        if body is None:
            raise MandateAPIError(
                f"{response.request.method} {response.request.url.path} answered {response.status_code} without "
                "JSON: is this URL a Mandate server?",
                status_code=response.status_code,
            )
        return body
    raise error(response, body)


def error(response: httpx.Response, body: Any) -> MandateError:
    status = response.status_code
    payload: dict[str, Any] = body if isinstance(body, dict) else {}
    err = payload.get("error")
    if not isinstance(err, dict):
        err = {}
    code = err.get("code")
    problems = tuple(
        Problem(str(p.get("field", "")), str(p.get("code", "")), str(p.get("message", "")))
        for p in err.get("problems") or ()
        if isinstance(p, dict)
    )
    what = f"{response.request.method} {response.request.url.path}"
    message = str(err.get("message") or payload.get("status") or response.reason_phrase or "error")
    text = f"{what} → {status}: {message}"
    if problems:
        text += "; " + "; ".join(f"{p.field}: {p.message}" for p in problems)
    kwargs: dict[str, Any] = {"status_code": status, "code": code, "problems": problems, "body": payload}
    if status in (400, 422):
        return MandateValidationError(text, **kwargs)
    if status == 404:
        return MandateNotFound(text, **kwargs)
    if status == 409:
        return MandateConflict(text, **kwargs)
    if status in RETRY_STATUSES:
        return MandateUnavailable(text, **kwargs)
    return MandateAPIError(text, **kwargs)


def decision_body(
    *,
    decision_id: UUID,
    organization_id: str,
    domain: str,
    intent: str,
    stage: str,
    actor: str,
    target: str,
    context: Mapping[str, Any],
    scope: Mapping[str, Any],
    timestamp: datetime | None,
    unstructured_context: str | None,
) -> dict[str, Any]:
    """The upstream-compatible flat body (`domain_name`, scope carrying organization and domain)."""
    body: dict[str, Any] = {
        "decision_id": str(decision_id),
        "organization_id": organization_id,
        "domain_name": domain,
        "intent": intent,
        "stage": stage,
        "actor": actor,
        "target": target,
        "context": dict(context),
        "scope": {"organization_id": organization_id, "domain_name": domain, **scope},
    }
    if timestamp is not None:
        body["timestamp"] = timestamp.isoformat()
    if unstructured_context is not None:
        body["unstructured_context"] = unstructured_context
    return body


def outcome_body(
    outcome: str, success: bool | None, stage: str | None, details: Mapping[str, Any] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"outcome": outcome, "details": dict(details or {})}
    if success is not None:
        body["success"] = success
    if stage is not None:
        body["stage"] = stage
    return body


def list_params(
    filters: Mapping[str, Any], organization_id: object, page_size: int, cursor: str | None
) -> dict[str, str]:
    params: dict[str, str] = {}
    if organization_id is not None:
        params["organization_id"] = str(organization_id)
    for key, value in filters.items():
        if value is None:
            continue
        params[key] = value.isoformat() if isinstance(value, datetime) else str(value)
    params["limit"] = str(page_size)
    if cursor:
        params["cursor"] = cursor
    return params


def require(value: str | None, name: str) -> str:
    if not value:
        raise ValueError(f"{name} is required: pass it to this call or to the client")
    return value


def to_uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def verdict(body: Any) -> Verdict:
    try:
        return Verdict.from_json(body)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise MandateAPIError(f"the server's answer is not a Mandate verdict ({type(exc).__name__}: {exc})") from exc


def verdict_for_stage(body: Mapping[str, Any], stage: str | None) -> Mapping[str, Any]:
    if stage is None:
        return body
    for row in body.get("verdicts") or ():
        if row.get("stage") == stage:
            return dict(row)
    raise MandateNotFound(f"decision {body.get('decision_id')} has no verdict at stage {stage}", status_code=404)
