"""Every SDK operation, written once for the sync and the async client (sans-IO).

An operation is a generator: it yields `Send` (one HTTP attempt) and `Sleep` steps and is sent back the response of
each `Send` (or has its `httpx.TransportError` thrown in), then returns its value. It does no I/O itself: each client
drives it (`Drive`) with its own transport and clock (`MandateClient._run` with `httpx.Client` and `time.sleep`,
`AsyncMandateClient._run` with `httpx.AsyncClient` and `asyncio.sleep`). Operations compose with `yield from`: every
request goes through `request` (the retry loop), `decide` waits through `wait_approval`, a guard asks through
`decide`. `sync` and `asynchronous` turn an operation into the public method of each client, with the operation's
parameters and defaults (and docstring, for the sync one); listings are `Pages`, which each client's iterator walks.

Bodies, answers and the retry policy are `_wire`'s; this module puts them in order.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Generator, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar
from uuid import UUID, uuid4

import httpx

from mandate.client import _wire
from mandate.client._approval import Approval, ApprovalState
from mandate.client._exceptions import ApprovalConflict, MandateConflict, MandateError, MandateUnavailable
from mandate.client._verdict import Verdict

JSON = dict[str, Any]
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True)
class Send:
    """One attempt of a request; the driver answers with the `httpx.Response`, or throws its `TransportError` in."""

    method: str
    path: str
    json: JSON | None
    params: Mapping[str, str] | None
    timeout: httpx.Timeout


@dataclass(frozen=True)
class Sleep:
    """Pause this many seconds (between attempts, or between rounds of a wait); the driver answers None."""

    seconds: float


Step = Send | Sleep
Op = Generator[Step, Any, R]
"""An operation that returns R."""


class Drive(Generic[T]):
    """An operation as a client runs it: iterating gives its steps; after a `Send`, set `reply` to the response (or
    `error` to the `httpx.TransportError` it raised); once the steps end, `result` is the operation's value."""

    def __init__(self, op: Op[T]) -> None:
        self._op = op
        self.reply: httpx.Response | None = None
        self.error: httpx.TransportError | None = None

    def __iter__(self) -> Drive[T]:
        return self

    def __next__(self) -> Step:
        reply, error, self.reply, self.error = self.reply, self.error, None, None
        try:
            return self._op.send(reply) if error is None else self._op.throw(error)
        except StopIteration as done:
            self.result: T = done.value
            raise StopIteration from None


class Session(Protocol):
    """What an operation reads from its client: the server, the defaults of `decide`, the retry policy, the
    timeout of one attempt."""

    base_url: str
    organization_id: str | None
    domain: str | None
    _retry: _wire.RetryPolicy
    _timeout: httpx.Timeout


# -- transport -----------------------------------------------------------------------------------------------------


def request(
    c: Session,
    method: str,
    path: str,
    *,
    json: JSON | None = None,
    params: Mapping[str, str] | None = None,
    idempotent: bool = True,
    retry_status: bool = True,
    timeout: httpx.Timeout | None = None,
    conflict: type[MandateConflict] = MandateConflict,
) -> Op[Any]:
    """One request under the retry policy (`_wire.Attempts`): its answer's JSON, or its typed error."""
    attempts = _wire.Attempts(c._retry, c.base_url, idempotent=idempotent, retry_status=retry_status)
    send = Send(method, path, json, params, c._timeout if timeout is None else timeout)
    while True:
        try:
            response: httpx.Response = yield send
        except httpx.TransportError as exc:
            yield Sleep(attempts.after_error(exc))
            continue
        delay = attempts.after_response(response)
        if delay is None:
            return _wire.answer(response, conflict)
        yield Sleep(delay)


class Pages(Generic[T]):
    """A listing, page by page: `next()` is the operation that fetches the next page, or None after the last."""

    def __init__(self, fetch: Callable[[str | None], Op[tuple[list[T], str | None]]]) -> None:
        self._fetch = fetch
        self._cursor: str | None = None
        self._done = False

    def next(self) -> Op[list[T]] | None:
        return None if self._done else self._page()

    def _page(self) -> Op[list[T]]:
        items, self._cursor = yield from self._fetch(self._cursor)
        self._done = not self._cursor
        return items


# -- decisions -----------------------------------------------------------------------------------------------------


def decide(
    c: Session,
    intent: str,
    stage: str,
    *,
    context: Mapping[str, Any],
    scope: Mapping[str, Any],
    target: str,
    actor: str,
    decision_id: UUID | str | None = None,
    unstructured_context: str | None = None,
    organization_id: str | UUID | None = None,
    domain: str | None = None,
    timestamp: datetime | None = None,
    approval_id: UUID | str | None = None,
    on_pause: _wire.OnPauseDecide = "return",
    wait_timeout: float = _wire.DEFAULT_WAIT_TIMEOUT_S,
) -> Op[Verdict]:
    """Ask Mandate before (or tell it after) acting. Returns the verdict; raises `MandateValidationError` for
    invalid attribution or signals, `MandateConflict` when this (decision_id, stage) was sent with another
    body, `MandateUnavailable` when Mandate cannot answer.

    The decision_id is fixed (a new uuid4 unless given) before the first attempt, so a retry after a lost
    answer gets the stored verdict back (`idempotent_replay`) instead of creating a second decision.

    `approval_id`: resume with an approval request resolved elsewhere (the PAUSE's `approval_id`): the same
    action as the PAUSE, under a new `decision_id`; ALLOW when the approval covers it, BLOCK otherwise.

    `on_pause="wait"`: a PAUSE is waited out, up to `wait_timeout` seconds (at most a day). Approved: the same
    action is sent again as a new decision with the approval (a resume), and that verdict is returned — ALLOW,
    or BLOCK when the approval no longer covers it. Rejected, withdrawn, expired (or used by another resume):
    the PAUSE is returned, `approval.state` saying which. Still pending at the deadline: `ApprovalTimeout`. An
    error while waiting is a `Paused` (never a `MandateError`). Fail closed: a PAUSE becomes ALLOW only by an
    approved resume."""
    _wire.check_wait(on_pause, wait_timeout)
    body = _wire.decision_body(
        decision_id=uuid4() if decision_id is None else _wire.to_uuid(decision_id),
        organization_id=_wire.require(
            str(organization_id) if organization_id is not None else c.organization_id, "organization_id"
        ),
        domain=_wire.require(domain or c.domain, "domain"),
        intent=intent,
        stage=stage,
        actor=actor,
        target=target,
        context=context,
        scope=scope,
        timestamp=timestamp,
        unstructured_context=unstructured_context,
        approval_id=approval_id,
    )
    verdict = _wire.verdict((yield from request(c, "POST", _wire.DECISIONS_PATH, json=body)))
    if on_pause == "return" or not verdict.paused:
        return verdict
    approval_id = _wire.waitable(verdict)
    try:
        approval = yield from wait_approval(c, approval_id, timeout=wait_timeout)
    except MandateError as exc:
        raise _wire.wait_failed(verdict, exc, wait_timeout) from exc
    if not _wire.after_wait(verdict, approval, wait_timeout):
        return replace(verdict, approval=approval)
    resume = _wire.resume_body(body, approval_id)
    answer = yield from request(c, "POST", _wire.DECISIONS_PATH, json=resume)
    return replace(_wire.verdict(answer), approval=approval)


def decide_many(c: Session, decisions: Iterable[Mapping[str, Any]]) -> Op[list[Verdict | MandateError]]:
    """Send up to 1,000 decisions in one request (`POST /api/decisions/batch`), for agents and gateways that
    record many (`executed` stages). Each mapping holds `decide`'s arguments (`intent`, `stage`, `context`,
    `scope`, `target`, `actor`, optionally `decision_id`, `domain`, `timestamp`, …). Returns one entry per
    decision, in order: its `Verdict`, or the error it got alone (a `MandateValidationError`, a
    `MandateConflict`, …) — returned, not raised, since a bad decision fails alone. Raises only when the
    request itself fails. Every decision_id is fixed before the first attempt, so a retry stores nothing
    twice."""
    body = _wire.batch_body(decisions, c.organization_id, c.domain)
    return _wire.batch_results((yield from request(c, "POST", _wire.BATCH_PATH, json=body)))


def report_outcome(
    c: Session,
    decision_id: UUID | str,
    outcome: str,
    *,
    success: bool | None = None,
    stage: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> Op[JSON]:
    """Record what happened after the verdict (an `outcome reported` timeline entry); returns that entry.

    Not idempotent (each call appends an entry), so it is retried only when the request surely did not
    arrive."""
    path = _wire.decision_path(decision_id, "outcome")
    body = _wire.outcome_body(outcome, success, stage, details)
    result: JSON = yield from request(c, "POST", path, json=body, idempotent=False)
    return result


# -- reads ---------------------------------------------------------------------------------------------------------


def get_decision(c: Session, decision_id: UUID | str) -> Op[JSON]:
    """The stored decision: the latest stage's fields at the top, every stage under `stages`."""
    result: JSON = yield from request(c, "GET", _wire.decision_path(decision_id))
    return result


def get_verdict(c: Session, decision_id: UUID | str, *, stage: str | None = None) -> Op[Verdict]:
    """The stored verdict of a decision (its latest stage, or `stage`), with its full explanation."""
    body = yield from request(c, "GET", _wire.decision_path(decision_id, "verdict"))
    return _wire.verdict(_wire.verdict_for_stage(body, stage))


def get_timeline(c: Session, decision_id: UUID | str) -> Op[list[JSON]]:
    """The decision's append-only timeline entries, oldest first."""
    body = yield from request(c, "GET", _wire.decision_path(decision_id, "timeline"))
    entries: list[JSON] = body["entries"]
    return entries


def decision_pages(c: Session, page_size: int, filters: dict[str, Any]) -> Pages[JSON]:
    """The pages of `list_decisions`."""
    organization_id = filters.pop("organization_id", None) or c.organization_id

    def fetch(cursor: str | None) -> Op[tuple[list[JSON], str | None]]:
        params = _wire.list_params(filters, organization_id, page_size, cursor)
        page = yield from request(c, "GET", _wire.DECISIONS_PATH, params=params)
        return page["items"], page.get("next_cursor")

    return Pages(fetch)


def replay(c: Session, decision_id: UUID | str) -> Op[JSON]:
    """Re-evaluate a stored decision with its stored spec, signals and snapshot; `identical` says whether the
    verdict and explanation are reproduced exactly."""
    result: JSON = yield from request(c, "GET", _wire.decision_path(decision_id, "replay"))
    return result


def health(c: Session) -> Op[JSON]:
    """The server's health: status, versions, database. `MandateUnavailable` when it is not serving (its
    `body` says why, e.g. `"status": "migrating"`); a 503 is reported at once, not retried."""
    result: JSON = yield from request(c, "GET", "/api/health", retry_status=False)
    return result


# -- approvals -----------------------------------------------------------------------------------------------------


def approval_pages(
    c: Session, state: ApprovalState, domain: str | None, organization_id: str | UUID | None, page_size: int
) -> Pages[Approval]:
    """The pages of `approvals.list`."""
    organization_id = organization_id or c.organization_id

    def fetch(cursor: str | None) -> Op[tuple[list[Approval], str | None]]:
        params = _wire.approval_params(state, domain, organization_id, page_size, cursor)
        return _wire.approval_page((yield from request(c, "GET", "/api/approvals", params=params)))

    return Pages(fetch)


def get_approval(c: Session, approval_id: UUID | str) -> Op[Approval]:
    """One request with its state now, its requirements and who satisfied them, its binding and its events."""
    return _wire.approval((yield from request(c, "GET", _wire.approval_path(approval_id))))


def wait_approval(
    c: Session, approval_id: UUID | str, *, timeout: float = _wire.DEFAULT_WAIT_TIMEOUT_S
) -> Op[Approval]:
    """The request once it is no longer pending, or as it is when `timeout` seconds have passed (then still
    pending: check `.pending`). Long-polls, so the answer comes as soon as an approver acts. Mandate unreachable
    meanwhile is asked again until the timeout; `MandateUnavailable` only if it never answered."""
    _wire.check_timeout(timeout, "timeout")
    waiting = _wire.Waiting(_wire.Deadline.after(timeout), c._retry)
    while True:
        try:
            if waiting.answered((yield from _poll(c, approval_id, waiting.deadline.poll()))):
                return waiting.result()
        except MandateUnavailable as exc:
            pause = waiting.unreachable(exc)
            if pause is None:
                return waiting.result()
            yield Sleep(pause)


def _poll(c: Session, approval_id: UUID | str, wait: float) -> Op[Approval]:
    timeout = _wire.long_poll_timeout(c._timeout, wait)
    params = {"wait": str(wait)}
    return _wire.approval(
        (yield from request(c, "GET", _wire.approval_path(approval_id), params=params, timeout=timeout))
    )


def approve(
    c: Session, approval_id: UUID | str, *, requirement: str | None = None, reason: str | None = None
) -> Op[Approval]:
    """Satisfy one requirement (name it when the request has several); the request is `approved` once every
    requirement is, each by a different approver. Returns the request now."""
    return (yield from _resolve(c, approval_id, "approve", _wire.resolution_body(requirement, reason)))


def reject(c: Session, approval_id: UUID | str, *, reason: str | None = None) -> Op[Approval]:
    """Reject a pending request: the agent must not proceed, and a resume with it is refused."""
    return (yield from _resolve(c, approval_id, "reject", _wire.resolution_body(reason=reason)))


def withdraw(c: Session, approval_id: UUID | str, *, reason: str | None = None) -> Op[Approval]:
    """Withdraw a request the agent no longer needs (pending, or approved and not yet used)."""
    return (yield from _resolve(c, approval_id, "withdraw", _wire.resolution_body(reason=reason)))


def _resolve(c: Session, approval_id: UUID | str, action: str, body: JSON) -> Op[Approval]:
    path = _wire.approval_path(approval_id, action)
    answer = yield from request(c, "POST", path, json=body, idempotent=False, conflict=ApprovalConflict)
    return _wire.approval(answer)


# -- the two faces of an operation ---------------------------------------------------------------------------------


class SyncOwner(Protocol):
    """A sync client, or a part of one (`Approvals`): runs an operation on its session."""

    @property
    def _session(self) -> Session: ...

    def _run(self, op: Op[T]) -> T: ...


class AsyncOwner(Protocol):
    """An async client, or a part of one (`AsyncApprovals`)."""

    @property
    def _session(self) -> Session: ...

    async def _run(self, op: Op[T]) -> T: ...


def constructor(cls: Callable[Concatenate[Any, P], R], doc: str) -> Callable[Concatenate[Any, P], R]:
    """A method that makes `cls` with its owner and the method's arguments (a client's `guard`)."""

    def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return cls(self, *args, **kwargs)

    return _as_method(method, cls, str(getattr(cls, "__name__", cls)), doc)


def sync(op: Callable[Concatenate[Session, P], Op[R]]) -> Callable[Concatenate[SyncOwner, P], R]:
    """The sync client's method for `op`: its parameters, defaults and docstring; it returns what `op` does."""

    def method(self: SyncOwner, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._run(op(self._session, *args, **kwargs))

    return _as_method(method, op, _result(op), op.__doc__)


def asynchronous(
    op: Callable[Concatenate[Session, P], Op[R]], doc: str
) -> Callable[Concatenate[AsyncOwner, P], Coroutine[Any, Any, R]]:
    """The async client's method for `op`, awaited, with docstring `doc`."""

    async def method(self: AsyncOwner, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self._run(op(self._session, *args, **kwargs))

    return _as_method(method, op, _result(op), doc)


def _result(op: Callable[..., Any]) -> str:
    """What `op` returns: the `…` of its `-> Op[…]`."""
    returns = str(inspect.signature(op).return_annotation)
    assert returns.startswith("Op[") and returns.endswith("]"), f"{op.__name__} must be annotated -> Op[…]"
    return returns[3:-1]


F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)


def _as_method(method: F, model: Callable[..., Any], returns: str, doc: str | None) -> F:
    """`method` with the signature `help()` shows: `model`'s parameters, `self` for the first, and `returns`."""
    signature = inspect.signature(model)
    first, *rest = signature.parameters.values()
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]  # read by inspect.signature and help()
        parameters=[first.replace(name="self", annotation=inspect.Parameter.empty), *rest], return_annotation=returns
    )
    method.__annotations__ = {p.name: p.annotation for p in rest if p.annotation is not p.empty} | {"return": returns}
    method.__doc__ = doc
    method._made_from = model  # type: ignore[attr-defined]  # for `methods`, which names it
    return method


def methods(cls: C) -> C:
    """Class decorator: the methods made by `sync`, `asynchronous` and `constructor` take the names they have in
    `cls`, as a method written in it would (for `help()`, reprs and tracebacks)."""
    for name, value in vars(cls).items():
        if hasattr(value, "_made_from"):
            value.__name__, value.__qualname__, value.__module__ = name, f"{cls.__qualname__}.{name}", cls.__module__
    return cls
