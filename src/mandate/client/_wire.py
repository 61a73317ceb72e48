"""The HTTP wire, shared by the sync and async clients: request bodies, answers → values or typed errors, and the
retry policy. No I/O happens here.

Retries. A request is sent at most `retries + 1` times, with exponential backoff and jitter between attempts.

- Idempotent requests (every GET, and `POST /api/decisions`, which the server deduplicates on (decision_id, stage)
  — the client fixes the decision_id before the first attempt) are retried on any connection error, timeout or
  dropped connection, and on 502/503/504.
- Outcome reports are not idempotent (each one appends a timeline entry), so they are retried only when the request
  certainly did not reach the server: a refused connection, a connect or pool timeout, or a 503. Nor are approve,
  reject and withdraw (a second one is refused with 409), so they are retried the same way.

Waiting for an approval. `GET /api/approvals/{id}?wait=N` answers when the request leaves `pending`, or after N
seconds (the server's bound is 60). A wait asks in rounds of `LONG_POLL_S` until its deadline; Mandate unreachable
meanwhile is asked again (with the retry policy's backoff) until the deadline, since a PAUSE stays a PAUSE whether
or not Mandate can be reached.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid4

import httpx

from mandate import __version__
from mandate.client._approval import Approval, ApprovalState
from mandate.client._exceptions import (
    ApprovalTimeout,
    MandateAPIError,
    MandateConflict,
    MandateError,
    MandateNotFound,
    MandateUnavailable,
    MandateValidationError,
    Paused,
    Problem,
)
from mandate.client._verdict import Verdict

USER_AGENT = f"mandate-python/{__version__}"
RETRY_STATUSES = frozenset({502, 503, 504})
DEFAULT_TIMEOUT_S = 15.0
"""Per attempt: longer than the server's own bound (10 s while its database is down, docs/reliability.md), so a
client sees the server's 503 — and retries it — rather than a timeout of its own."""
LONG_POLL_S = 30.0
"""Seconds one long-poll asks the server to hold the answer (the server allows up to 60)."""
DEFAULT_WAIT_TIMEOUT_S = 600.0
MAX_WAIT_TIMEOUT_S = 86_400.0
"""The longest `decide(on_pause="wait")` and `approvals.wait` may wait: a day. A PAUSE expires on its own clock
(the spec's timeout), after which the wait ends as `expired` anyway."""
OnPauseDecide = Literal["return", "wait"]
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


@dataclass
class Attempts:
    """The retry policy applied to one request, attempt by attempt: after each failure or answer, how long to wait
    before the next attempt — or that there is none (the clients do the sending and the sleeping)."""

    policy: RetryPolicy
    base_url: str
    idempotent: bool = True
    retry_status: bool = True
    attempt: int = 1

    def after_error(self, exc: httpx.TransportError) -> float:
        """Seconds to wait before retrying after `exc`; `MandateUnavailable` when there is no retry."""
        if self.attempt == self.policy.attempts or not retryable_exception(exc, idempotent=self.idempotent):
            raise unreachable(exc, self.base_url, self.attempt) from exc
        self.attempt += 1
        return self.policy.delay(self.attempt - 1)

    def after_response(self, response: httpx.Response) -> float | None:
        """Seconds to wait before retrying after `response`, or None: it is the answer."""
        last = self.attempt == self.policy.attempts
        if last or not self.retry_status or not retryable_status(response.status_code, idempotent=self.idempotent):
            return None
        self.attempt += 1
        return self.policy.delay(self.attempt - 1, retry_after(response))


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


@dataclass(frozen=True)
class Settings:
    """What a client is made with, checked: the server's URL, the defaults of `decide`, the retry policy."""

    base_url: str
    organization_id: str | None
    domain: str | None
    retry: RetryPolicy


def settings(
    base_url: str, organization_id: str | UUID | None, domain: str | None, retries: int, backoff: float
) -> Settings:
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https:// (got {base_url!r})")
    org = None if organization_id is None else str(organization_id)
    return Settings(base_url.rstrip("/"), org, domain, RetryPolicy(retries=retries, backoff=backoff))


TOKEN_VARIABLE = "MANDATE_API_TOKEN"


def headers(token: str | None) -> dict[str, str]:
    """Every request's headers; the token is `token`, else the MANDATE_API_TOKEN environment variable."""
    h = {"user-agent": USER_AGENT, "accept": "application/json"}
    if token is None:
        token = os.environ.get(TOKEN_VARIABLE) or None
    if token:
        h["authorization"] = f"Bearer {token}"
    return h


def answer(response: httpx.Response, conflict: type[MandateConflict] = MandateConflict) -> Any:
    """The JSON of a successful answer, or the typed error for an unsuccessful one (`conflict` for a 409)."""
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
    raise error(response, body, conflict)


def error(response: httpx.Response, body: Any, conflict: type[MandateConflict] = MandateConflict) -> MandateError:
    what = f"{response.request.method} {response.request.url.path}"
    return error_of(response.status_code, body, what, response.reason_phrase, conflict)


def error_of(
    status: int, body: Any, what: str, reason: str | None = None, conflict: type[MandateConflict] = MandateConflict
) -> MandateError:
    """The typed error of an unsuccessful answer: its status and JSON body (`what` names the request)."""
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
    message = str(err.get("message") or payload.get("status") or reason or "error")
    text = f"{what} → {status}: {message}"
    if problems:
        text += "; " + "; ".join(f"{p.field}: {p.message}" for p in problems)
    kwargs: dict[str, Any] = {"status_code": status, "code": code, "problems": problems, "body": payload}
    if status in (400, 422):
        return MandateValidationError(text, **kwargs)
    if status == 404:
        return MandateNotFound(text, **kwargs)
    if status == 409:
        return conflict(text, **kwargs)
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
    approval_id: UUID | str | None = None,
) -> dict[str, Any]:
    """The upstream-compatible flat body (`domain_name`, scope carrying organization and domain); with
    `approval_id`, a resume."""
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
    if approval_id is not None:
        body["approval_id"] = str(to_uuid(approval_id))
    return body


BATCH_PATH = "/api/decisions/batch"
MAX_BATCH = 1000
_DECISION_KEYS = frozenset(
    {"intent", "stage", "context", "scope", "target", "actor", "decision_id", "unstructured_context",
     "organization_id", "domain", "timestamp", "approval_id"}
)  # fmt: skip


def batch_body(
    decisions: Iterable[Mapping[str, Any]], organization_id: str | None, domain: str | None
) -> dict[str, Any]:
    """`{"decisions": [...]}` from mappings of `decide`'s arguments, each with its decision_id fixed (a new uuid4
    unless given) so that the whole batch may be sent again safely."""
    bodies = []
    for n, d in enumerate(decisions):
        unknown = sorted(set(d) - _DECISION_KEYS)
        if unknown:
            raise TypeError(f"decision {n}: unknown argument(s) {', '.join(unknown)}")
        org = d.get("organization_id")
        bodies.append(
            decision_body(
                decision_id=uuid4() if d.get("decision_id") is None else to_uuid(d["decision_id"]),
                organization_id=require(str(org) if org is not None else organization_id, "organization_id"),
                domain=require(d.get("domain") or domain, "domain"),
                intent=d["intent"],
                stage=d["stage"],
                actor=d["actor"],
                target=d["target"],
                context=d.get("context") or {},
                scope=d.get("scope") or {},
                timestamp=d.get("timestamp"),
                unstructured_context=d.get("unstructured_context"),
                approval_id=d.get("approval_id"),
            )
        )
    if not 1 <= len(bodies) <= MAX_BATCH:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH} decisions, not {len(bodies)}")
    return {"decisions": bodies}


def batch_results(body: Any) -> list[Verdict | MandateError]:
    """One entry per decision sent, in order: its Verdict, or the typed error it got (never raised)."""
    items = body.get("results") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise MandateAPIError(f"POST {BATCH_PATH} answered without results", status_code=200)
    out: list[Verdict | MandateError] = []
    for item in items:
        status = item.get("status") if isinstance(item, dict) else None
        if status in (200, 201):
            out.append(verdict(item))
        else:
            out.append(error_of(int(status or 0), item, f"POST {BATCH_PATH} (one decision)"))
    return out


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


DECISIONS_PATH = "/api/decisions"


def decision_path(decision_id: UUID | str, what: str | None = None) -> str:
    """`/api/decisions/{id}`, or one of its resources (`verdict`, `timeline`, `replay`, `outcome`)."""
    path = f"{DECISIONS_PATH}/{to_uuid(decision_id)}"
    return path if what is None else f"{path}/{what}"


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


# -- approvals -----------------------------------------------------------------------------------------------------


def check_wait(on_pause: str, wait_timeout: float) -> None:
    """ValueError, before anything is sent, for an `on_pause` or a `wait_timeout` `decide` cannot honour."""
    if on_pause not in ("return", "wait"):
        raise ValueError(f"on_pause must be 'return' or 'wait' (got {on_pause!r})")
    check_timeout(wait_timeout, "wait_timeout")


def check_timeout(seconds: float, name: str) -> None:
    if not 0 < seconds <= MAX_WAIT_TIMEOUT_S:
        raise ValueError(f"{name} must be more than 0 and at most {MAX_WAIT_TIMEOUT_S:g} seconds (got {seconds!r})")


def resume_body(body: Mapping[str, Any], approval_id: UUID) -> dict[str, Any]:
    """The same action as `body`, sent again as a new decision with the approval it proceeds with."""
    return {**body, "decision_id": str(uuid4()), "approval_id": str(approval_id)}


def approval_path(approval_id: UUID | str, action: str | None = None) -> str:
    path = f"/api/approvals/{to_uuid(approval_id)}"
    return path if action is None else f"{path}/{action}"


def resolution_body(requirement: str | None = None, reason: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if requirement is not None:
        body["requirement"] = requirement
    if reason is not None:
        body["reason"] = reason
    return body


def approval(body: Any) -> Approval:
    try:
        return Approval.from_json(body)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise MandateAPIError(
            f"the server's answer is not a Mandate approval request ({type(exc).__name__}: {exc})"
        ) from exc


def approval_page(page: Any) -> tuple[list[Approval], str | None]:
    try:
        items, cursor = page["items"], page.get("next_cursor")
    except (KeyError, TypeError, AttributeError) as exc:
        raise MandateAPIError(f"the server's answer is not a page of approvals ({type(exc).__name__}: {exc})") from exc
    return [approval(item) for item in items], cursor


def approval_params(
    state: ApprovalState, domain: str | None, organization_id: object, page_size: int, cursor: str | None
) -> dict[str, str]:
    return list_params({"state": state, "domain": domain}, organization_id, page_size, cursor)


def long_poll_timeout(base: httpx.Timeout, wait: float) -> httpx.Timeout:
    """The client's timeout with the read bound extended by the `wait` the server holds the answer."""
    return httpx.Timeout(
        connect=base.connect, read=None if base.read is None else base.read + wait, write=base.write, pool=base.pool
    )


@dataclass(frozen=True)
class Deadline:
    """When a wait ends, on the monotonic clock."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def poll(self) -> float:
        """Seconds the next long-poll asks the server to wait."""
        return round(min(LONG_POLL_S, self.left()), 3)


@dataclass
class Waiting:
    """A wait for an approval request to leave `pending`, round by round: what the last answer says, and how long
    to pause when Mandate could not be reached (the clients do the asking and the sleeping)."""

    deadline: Deadline
    policy: RetryPolicy
    seen: Approval | None = None
    failures: int = 0

    def answered(self, approval: Approval) -> bool:
        """Record an answer; True when the wait is over (no longer pending, or the deadline passed)."""
        self.seen, self.failures = approval, 0
        return not approval.pending or self.deadline.left() <= 0

    def unreachable(self, exc: MandateUnavailable) -> float | None:
        """Seconds to pause before asking again, or None when the deadline passed (`exc` again if Mandate never
        answered at all)."""
        self.failures += 1
        if self.deadline.left() <= 0:
            if self.seen is None:
                raise exc
            return None
        return min(self.policy.delay(self.failures), self.deadline.left())

    def result(self) -> Approval:
        assert self.seen is not None
        return self.seen


def waitable(verdict: Verdict) -> UUID:
    """The approval request a PAUSE waits on; `Paused` when the server did not name one (fail closed)."""
    if verdict.approval_id is None:
        raise Paused(
            verdict,
            f"PAUSE without an approval request, so there is nothing to wait for (a server older than approvals?): "
            f"do not act; {verdict.summary}",
        )
    return verdict.approval_id


def wait_failed(verdict: Verdict, exc: MandateError, waited: float) -> Paused:
    """What `decide(on_pause="wait")` raises when waiting failed: never a `MandateError`, which a fallback for an
    unreachable Mandate could catch and act on. Unreachable until the deadline is a timeout."""
    if isinstance(exc, MandateUnavailable):
        return ApprovalTimeout(verdict, None, waited)
    return Paused(verdict, f"PAUSE, and waiting for approval {verdict.approval_id} failed ({exc}): do not act")


def after_wait(verdict: Verdict, approval: Approval, waited: float) -> bool:
    """Whether to resume: True when the request was approved. Still pending is `ApprovalTimeout`; any other state
    (rejected, withdrawn, expired, consumed by another resume) is False: the PAUSE stands."""
    if approval.pending:
        raise ApprovalTimeout(verdict, approval, waited)
    return approval.approved
