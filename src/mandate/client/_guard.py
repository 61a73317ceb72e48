"""Guards for agent tools: ask Mandate before a tool runs, honour the verdict, report the outcome after.

    with mandate.guard("database.drop_table", "pre_commit", context=..., scope=..., target=..., actor=...) as v:
        drop_table()                       # runs only on ALLOW or OBSERVE (or PAUSE, if on_pause lets it)

    @mandate.guard("file.write", "pre_commit", scope=..., actor=...,
                   context=lambda path, text: {"content_length": len(text), "content_type": "yaml"},
                   target=lambda path, text: path)
    def write_file(path: str, text: str) -> None: ...

As a decorator, `context`, `target` and `unstructured_context` may be functions of the tool's arguments.

BLOCK raises `Blocked` and the tool never runs. PAUSE raises `Paused` by default; `on_pause="proceed"` lets the
tool run, and a callable `on_pause(verdict) -> bool` decides (e.g. after an approval obtained elsewhere). After
the tool, the guard reports `succeeded` or `failed` (with the exception's type, never its message); a refused tool
is reported as `refused`. A failed report is logged, never raised: the tool has run (or been refused) by then,
and an exception would make the agent believe otherwise.

Which verdict stops a tool is the agent's side of the contract (Mandate never executes anything); the guard only
applies it, and each use of a guard is a new decision.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar
from uuid import UUID

from mandate.client import _ops
from mandate.client._exceptions import Blocked, MandateError, Paused
from mandate.client._verdict import Verdict

if TYPE_CHECKING:
    from mandate.client._async_client import AsyncMandateClient
    from mandate.client._client import MandateClient

log = logging.getLogger("mandate.client")

P = ParamSpec("P")
R = TypeVar("R")
OnPause = Literal["raise", "proceed"] | Callable[[Verdict], bool]
ContextArg = Mapping[str, Any] | Callable[..., Mapping[str, Any]]
TargetArg = str | Callable[..., str]
TextArg = str | Callable[..., str | None] | None


@dataclass(frozen=True)
class _Ask:
    """What a guard asks; `context`, `target` and `unstructured_context` may be functions of the tool's arguments
    (decorator use)."""

    intent: str
    stage: str
    context: ContextArg
    scope: Mapping[str, Any]
    target: TargetArg
    actor: str
    unstructured_context: TextArg
    organization_id: str | UUID | None
    domain: str | None

    def check_static(self) -> None:
        if callable(self.context) or callable(self.target) or callable(self.unstructured_context):
            raise TypeError(
                "context, target or unstructured_context is a function of the tool's arguments: "
                "use the guard as a decorator"
            )

    def arguments(self, args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
        kwargs = kwargs or {}
        context = self.context(*args, **kwargs) if callable(self.context) else self.context
        target = self.target(*args, **kwargs) if callable(self.target) else self.target
        text = self.unstructured_context
        text = text(*args, **kwargs) if callable(text) else text
        return {
            "context": context,
            "scope": self.scope,
            "target": target,
            "actor": self.actor,
            "unstructured_context": text,
            "organization_id": self.organization_id,
            "domain": self.domain,
        }


def _refusal(verdict: Verdict, on_pause: OnPause) -> Blocked | Paused | None:
    """The exception that stops the tool, or None when it may run."""
    if verdict.blocked:
        return Blocked(verdict)
    if verdict.paused:
        proceed = on_pause == "proceed" or (callable(on_pause) and on_pause(verdict))
        return None if proceed else Paused(verdict)
    return None


def _outcome(exc_type: type[BaseException] | None) -> tuple[str, bool, dict[str, Any]]:
    if exc_type is None:
        return "succeeded", True, {}
    return "failed", False, {"error_type": exc_type.__name__}


def _check_on_pause(on_pause: OnPause) -> None:
    if not (on_pause in ("raise", "proceed") or callable(on_pause)):
        raise ValueError(f"on_pause must be 'raise', 'proceed' or a function of the verdict (got {on_pause!r})")


class _Guard:
    """What a sync and an async guard share: the question, the policy, and the two operations of each use
    (ask and refuse, report), written once."""

    def __init__(
        self,
        client: _ops.Session,
        intent: str,
        stage: str,
        *,
        context: ContextArg,
        scope: Mapping[str, Any],
        target: TargetArg,
        actor: str,
        unstructured_context: TextArg = None,
        organization_id: str | UUID | None = None,
        domain: str | None = None,
        on_pause: OnPause = "raise",
        report: bool = True,
    ) -> None:
        _check_on_pause(on_pause)
        self._client = client
        self._ask = _Ask(intent, stage, context, scope, target, actor, unstructured_context, organization_id, domain)
        self._on_pause = on_pause
        self._report = report
        self._local = threading.local()
        self.verdict: Verdict | None = None

    @property
    def _open(self) -> list[Verdict]:
        """The verdicts of this thread's open `with` blocks, innermost last."""
        if not hasattr(self._local, "open"):
            self._local.open = []
        stack: list[Verdict] = self._local.open
        return stack

    def _before(self, args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] | None = None) -> _ops.Op[Verdict]:
        arguments = self._ask.arguments(args, kwargs)
        verdict = yield from _ops.decide(self._client, self._ask.intent, self._ask.stage, **arguments)
        self.verdict = verdict
        refusal = _refusal(verdict, self._on_pause)
        if refusal is not None:
            yield from self._tell(verdict, "refused", False, {"verdict": verdict.verdict})
            raise refusal
        return verdict

    def _tell(self, verdict: Verdict, outcome: str, success: bool, details: dict[str, Any]) -> _ops.Op[None]:
        if not self._report:
            return
        try:
            yield from _ops.report_outcome(
                self._client, verdict.decision_id, outcome, success=success, stage=verdict.stage, details=details
            )
        except MandateError as exc:
            log.warning("could not report outcome %r of decision %s: %s", outcome, verdict.decision_id, exc)


class Guard(_Guard):
    """A guard of `MandateClient` (see the module docstring). `verdict` is the latest verdict it received.

    As a decorator it may be called from many threads at once; as a context manager, each thread's `with` blocks
    are tracked separately."""

    _client: MandateClient

    def __enter__(self) -> Verdict:
        self._ask.check_static()
        verdict = self._client._run(self._before())
        self._open.append(verdict)
        return verdict

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client._run(self._tell(self._open.pop(), *_outcome(exc_type)))

    def __call__(self, tool: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(tool):
            raise TypeError(f"{tool.__qualname__} is a coroutine function: guard it with AsyncMandateClient.guard")
        run = self._client._run

        @functools.wraps(tool)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            verdict = run(self._before(args, kwargs))
            try:
                result = tool(*args, **kwargs)
            except BaseException as exc:
                run(self._tell(verdict, *_outcome(type(exc))))
                raise
            run(self._tell(verdict, *_outcome(None)))
            return result

        return guarded


class AsyncGuard(_Guard):
    """A guard of `AsyncMandateClient`: `async with` and decorator of coroutine functions. As a decorator it may run
    in many tasks at once; as a context manager, create one per `async with` (`async with mandate.guard(…)`)."""

    _client: AsyncMandateClient

    async def __aenter__(self) -> Verdict:
        self._ask.check_static()
        verdict = await self._client._run(self._before())
        self._open.append(verdict)
        return verdict

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client._run(self._tell(self._open.pop(), *_outcome(exc_type)))

    def __call__(self, tool: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        if not inspect.iscoroutinefunction(tool):
            raise TypeError(
                f"{getattr(tool, '__qualname__', tool)} is not a coroutine function: use MandateClient.guard"
            )
        run = self._client._run

        @functools.wraps(tool)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            verdict = await run(self._before(args, kwargs))
            try:
                result = await tool(*args, **kwargs)
            except BaseException as exc:
                await run(self._tell(verdict, *_outcome(type(exc))))
                raise
            await run(self._tell(verdict, *_outcome(None)))
            return result

        return guarded
