"""`AsyncMandateClient`: the asynchronous client (asyncio or trio, through httpx). Same methods as `MandateClient`,
awaited; `list_decisions` is an async iterator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import Any
from uuid import UUID, uuid4

import httpx

from mandate.client import _trace, _wire
from mandate.client._approvals import AsyncApprovals
from mandate.client._exceptions import MandateConflict, MandateError
from mandate.client._guard import AsyncGuard, ContextArg, OnPause, TargetArg, TextArg
from mandate.client._verdict import Verdict

JSON = dict[str, Any]


class AsyncMandateClient:
    """The asynchronous twin of `MandateClient`: the same arguments, methods and errors, awaited.

    async with AsyncMandateClient("http://127.0.0.1:3000", organization_id=ORG, domain="finance") as mandate:
        verdict = await mandate.decide("database.drop_table", "pre_commit", ...)
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:3000",
        *,
        organization_id: str | UUID | None = None,
        domain: str | None = None,
        token: str | None = None,
        timeout: float | httpx.Timeout = _wire.DEFAULT_TIMEOUT_S,
        retries: int = 2,
        backoff: float = 0.25,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        config = _wire.settings(base_url, organization_id, domain, retries, backoff)
        self.base_url, self.organization_id, self.domain = config.base_url, config.organization_id, config.domain
        self._retry = config.retry
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_wire.headers(token),
            timeout=timeout,
            transport=transport,
            event_hooks={"request": [_trace.ainject]},
        )
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

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: JSON | None = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool = True,
        retry_status: bool = True,
        timeout: httpx.Timeout | None = None,
        conflict: type[MandateConflict] = MandateConflict,
    ) -> Any:
        attempts = _wire.Attempts(self._retry, self.base_url, idempotent=idempotent, retry_status=retry_status)
        timeout = self._http.timeout if timeout is None else timeout
        while True:
            try:
                response = await self._http.request(method, path, json=json, params=params, timeout=timeout)
            except httpx.TransportError as exc:
                await asyncio.sleep(attempts.after_error(exc))
                continue
            delay = attempts.after_response(response)
            if delay is None:
                return _wire.answer(response, conflict)
            await asyncio.sleep(delay)

    # -- decisions -----------------------------------------------------------------------------------------------

    async def decide(
        self,
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
    ) -> Verdict:
        """`MandateClient.decide`, awaited: the same arguments, retries, PAUSE handling and errors."""
        _wire.check_wait(on_pause, wait_timeout)
        body = _wire.decision_body(
            decision_id=uuid4() if decision_id is None else _wire.to_uuid(decision_id),
            organization_id=_wire.require(
                str(organization_id) if organization_id is not None else self.organization_id, "organization_id"
            ),
            domain=_wire.require(domain or self.domain, "domain"),
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
        verdict = _wire.verdict(await self._request("POST", _wire.DECISIONS_PATH, json=body))
        if on_pause == "return" or not verdict.paused:
            return verdict
        approval_id = _wire.waitable(verdict)
        try:
            approval = await self.approvals.wait(approval_id, timeout=wait_timeout)
        except MandateError as exc:
            raise _wire.wait_failed(verdict, exc, wait_timeout) from exc
        if not _wire.after_wait(verdict, approval, wait_timeout):
            return replace(verdict, approval=approval)
        resume = _wire.resume_body(body, approval_id)
        return replace(_wire.verdict(await self._request("POST", _wire.DECISIONS_PATH, json=resume)), approval=approval)

    async def decide_many(self, decisions: Iterable[Mapping[str, Any]]) -> list[Verdict | MandateError]:
        """`MandateClient.decide_many`, awaited: up to 1,000 decisions in one request, one entry per decision."""
        body = _wire.batch_body(decisions, self.organization_id, self.domain)
        return _wire.batch_results(await self._request("POST", _wire.BATCH_PATH, json=body))

    async def report_outcome(
        self,
        decision_id: UUID | str,
        outcome: str,
        *,
        success: bool | None = None,
        stage: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> JSON:
        """`MandateClient.report_outcome`, awaited (not idempotent: retried only when surely not sent)."""
        path = _wire.decision_path(decision_id, "outcome")
        result: JSON = await self._request(
            "POST", path, json=_wire.outcome_body(outcome, success, stage, details), idempotent=False
        )
        return result

    def guard(
        self,
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
    ) -> AsyncGuard:
        """A guard for a tool: ask before it runs, refuse on BLOCK (`Blocked`) and PAUSE (`Paused`, unless
        `on_pause` says otherwise), run it, report the outcome. Use it as an async context manager (`async with …
        as verdict:`) or as a decorator of coroutine functions, where `context`, `target` and
        `unstructured_context` may be functions of the tool's arguments. Each use is a new decision."""
        return AsyncGuard(
            self,
            intent=intent,
            stage=stage,
            context=context,
            scope=scope,
            target=target,
            actor=actor,
            unstructured_context=unstructured_context,
            organization_id=organization_id,
            domain=domain,
            on_pause=on_pause,
            report=report,
        )

    # -- reads ---------------------------------------------------------------------------------------------------

    async def get_decision(self, decision_id: UUID | str) -> JSON:
        """`MandateClient.get_decision`, awaited."""
        result: JSON = await self._request("GET", _wire.decision_path(decision_id))
        return result

    async def get_verdict(self, decision_id: UUID | str, *, stage: str | None = None) -> Verdict:
        """`MandateClient.get_verdict`, awaited."""
        body = await self._request("GET", _wire.decision_path(decision_id, "verdict"))
        return _wire.verdict(_wire.verdict_for_stage(body, stage))

    async def get_timeline(self, decision_id: UUID | str) -> list[JSON]:
        """`MandateClient.get_timeline`, awaited."""
        body = await self._request("GET", _wire.decision_path(decision_id, "timeline"))
        entries: list[JSON] = body["entries"]
        return entries

    async def list_decisions(self, *, page_size: int = 50, **filters: Any) -> AsyncIterator[JSON]:
        """`MandateClient.list_decisions` as an async iterator: newest first, page by page."""
        organization_id = filters.pop("organization_id", None) or self.organization_id
        cursor: str | None = None
        while True:
            params = _wire.list_params(filters, organization_id, page_size, cursor)
            page = await self._request("GET", _wire.DECISIONS_PATH, params=params)
            for item in page["items"]:
                yield item
            cursor = page.get("next_cursor")
            if not cursor:
                return

    async def replay(self, decision_id: UUID | str) -> JSON:
        """`MandateClient.replay`, awaited."""
        result: JSON = await self._request("GET", _wire.decision_path(decision_id, "replay"))
        return result

    async def health(self) -> JSON:
        """`MandateClient.health`, awaited (a 503 is reported at once, not retried)."""
        result: JSON = await self._request("GET", "/api/health", retry_status=False)
        return result
