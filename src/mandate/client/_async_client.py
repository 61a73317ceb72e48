"""`AsyncMandateClient`: the asynchronous client (asyncio or trio, through httpx). Same methods as `MandateClient`,
awaited; `list_decisions` is an async iterator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, TypeVar

import httpx

from mandate.client import _ops, _trace
from mandate.client._approvals import AsyncApprovals
from mandate.client._base import ClientBase
from mandate.client._guard import AsyncGuard

JSON = dict[str, Any]
T = TypeVar("T")


@_ops.methods
class AsyncMandateClient(ClientBase[httpx.AsyncBaseTransport]):
    """The asynchronous twin of `MandateClient`: the same arguments, methods and errors, awaited.

    async with AsyncMandateClient("http://127.0.0.1:3000", organization_id=ORG, domain="finance") as mandate:
        verdict = await mandate.decide("database.drop_table", "pre_commit", ...)
    """

    _http: httpx.AsyncClient

    def _open(self, **options: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(**options, event_hooks={"request": [_trace.ainject]})

    def _attach(self) -> None:
        self.approvals = AsyncApprovals(self)
        """The approval requests of PAUSEs: list, get, wait, approve, reject, withdraw."""

    # -- lifecycle -----------------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncMandateClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"AsyncMandateClient({self.base_url!r}, organization_id={self.organization_id!r}, domain={self.domain!r})"
        )

    # -- transport -----------------------------------------------------------------------------------------------

    @property
    def _session(self) -> AsyncMandateClient:
        return self

    async def _run(self, op: _ops.Op[T]) -> T:
        """Drive an operation to its result: send its requests with `httpx.AsyncClient`, sleep with
        `asyncio.sleep`."""
        drive = _ops.Drive(op)
        for step in drive:
            if isinstance(step, _ops.Sleep):
                await asyncio.sleep(step.seconds)
                continue
            try:
                drive.reply = await self._http.request(
                    step.method, step.path, json=step.json, params=step.params, timeout=step.timeout
                )
            except httpx.TransportError as exc:
                drive.error = exc
        return drive.result

    # -- decisions -----------------------------------------------------------------------------------------------

    decide = _ops.asynchronous(
        _ops.decide, "`MandateClient.decide`, awaited: the same arguments, retries, PAUSE handling and errors."
    )
    decide_many = _ops.asynchronous(
        _ops.decide_many,
        "`MandateClient.decide_many`, awaited: up to 1,000 decisions in one request, one entry per decision.",
    )
    report_outcome = _ops.asynchronous(
        _ops.report_outcome,
        "`MandateClient.report_outcome`, awaited (not idempotent: retried only when surely not sent).",
    )

    guard = _ops.constructor(
        AsyncGuard,
        """A guard for a tool: ask before it runs, refuse on BLOCK (`Blocked`) and PAUSE (`Paused`, unless
        `on_pause` says otherwise), run it, report the outcome. Use it as an async context manager (`async with …
        as verdict:`) or as a decorator of coroutine functions, where `context`, `target` and
        `unstructured_context` may be functions of the tool's arguments. Each use is a new decision.""",
    )

    # -- reads ---------------------------------------------------------------------------------------------------

    get_decision = _ops.asynchronous(_ops.get_decision, "`MandateClient.get_decision`, awaited.")
    get_verdict = _ops.asynchronous(_ops.get_verdict, "`MandateClient.get_verdict`, awaited.")
    get_timeline = _ops.asynchronous(_ops.get_timeline, "`MandateClient.get_timeline`, awaited.")

    async def list_decisions(self, *, page_size: int = 50, **filters: Any) -> AsyncIterator[JSON]:
        """`MandateClient.list_decisions` as an async iterator: newest first, page by page."""
        pages = _ops.decision_pages(self, page_size, filters)
        while (page := pages.next()) is not None:
            for item in await self._run(page):
                yield item

    replay = _ops.asynchronous(_ops.replay, "`MandateClient.replay`, awaited.")
    health = _ops.asynchronous(_ops.health, "`MandateClient.health`, awaited (a 503 is reported at once, not retried).")
