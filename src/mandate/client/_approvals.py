"""`client.approvals`: the approval requests of PAUSEs, for approvers (list, approve, reject) and for the agent that
asked (get, wait, withdraw). Every answer is an `Approval`; a transition the lifecycle forbids is `ApprovalConflict`
with its `code`.

    for approval in mandate.approvals.list(domain="config-management"):      # pending, oldest first
        print(approval.approval_id, approval.missing, approval.binding["target"])
    mandate.approvals.approve(approval_id, requirement="dba-approval", reason="backup verified")

Which token may do what is the server's to say: approve and reject need an approver (or admin) token to whom the
request is routed; withdraw, the agent token that sent the PAUSE (or an admin); reading, any token of the domain (an
agent sees only its own).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any
from uuid import UUID

from mandate.client import _wire
from mandate.client._approval import Approval, ApprovalState
from mandate.client._exceptions import ApprovalConflict, MandateUnavailable

if TYPE_CHECKING:
    from mandate.client._async_client import AsyncMandateClient
    from mandate.client._client import MandateClient


class Approvals:
    """The approval requests, through a `MandateClient` (its URL, token, timeouts and retries)."""

    def __init__(self, client: MandateClient) -> None:
        self._client = client

    def list(
        self,
        *,
        state: ApprovalState = "pending",
        domain: str | None = None,
        organization_id: str | UUID | None = None,
        page_size: int = 50,
    ) -> Iterator[Approval]:
        """Every request in `state` of the token's domains (or of `domain`), oldest first — the queue's order —
        fetched page by page as the iterator advances. `organization_id` defaults to the client's, else the
        token's."""
        organization_id = organization_id or self._client.organization_id
        cursor: str | None = None
        while True:
            params = _wire.approval_params(state, domain, organization_id, page_size, cursor)
            items, cursor = _wire.approval_page(self._client._request("GET", "/api/approvals", params=params))
            yield from items
            if not cursor:
                return

    def get(self, approval_id: UUID | str) -> Approval:
        """One request with its state now, its requirements and who satisfied them, its binding and its events."""
        return _wire.approval(self._client._request("GET", _wire.approval_path(approval_id)))

    def wait(self, approval_id: UUID | str, *, timeout: float = _wire.DEFAULT_WAIT_TIMEOUT_S) -> Approval:
        """The request once it is no longer pending, or as it is when `timeout` seconds have passed (then still
        pending: check `.pending`). Long-polls, so the answer comes as soon as an approver acts. Mandate unreachable
        meanwhile is asked again until the timeout; `MandateUnavailable` only if it never answered."""
        _wire.check_timeout(timeout, "timeout")
        waiting = _wire.Waiting(_wire.Deadline.after(timeout), self._client._retry)
        while True:
            try:
                if waiting.answered(self._poll(approval_id, waiting.deadline.poll())):
                    return waiting.result()
            except MandateUnavailable as exc:
                pause = waiting.unreachable(exc)
                if pause is None:
                    return waiting.result()
                time.sleep(pause)

    def _poll(self, approval_id: UUID | str, wait: float) -> Approval:
        timeout = _wire.long_poll_timeout(self._client._http.timeout, wait)
        params = {"wait": str(wait)}
        return _wire.approval(
            self._client._request("GET", _wire.approval_path(approval_id), params=params, timeout=timeout)
        )

    def approve(
        self, approval_id: UUID | str, *, requirement: str | None = None, reason: str | None = None
    ) -> Approval:
        """Satisfy one requirement (name it when the request has several); the request is `approved` once every
        requirement is, each by a different approver. Returns the request now."""
        return self._resolve(approval_id, "approve", _wire.resolution_body(requirement, reason))

    def reject(self, approval_id: UUID | str, *, reason: str | None = None) -> Approval:
        """Reject a pending request: the agent must not proceed, and a resume with it is refused."""
        return self._resolve(approval_id, "reject", _wire.resolution_body(reason=reason))

    def withdraw(self, approval_id: UUID | str, *, reason: str | None = None) -> Approval:
        """Withdraw a request the agent no longer needs (pending, or approved and not yet used)."""
        return self._resolve(approval_id, "withdraw", _wire.resolution_body(reason=reason))

    def _resolve(self, approval_id: UUID | str, action: str, body: dict[str, Any]) -> Approval:
        path = _wire.approval_path(approval_id, action)
        answer = self._client._request("POST", path, json=body, idempotent=False, conflict=ApprovalConflict)
        return _wire.approval(answer)


class AsyncApprovals:
    """The approval requests, through an `AsyncMandateClient`: the methods of `Approvals`, awaited; `list` is an
    async iterator."""

    def __init__(self, client: AsyncMandateClient) -> None:
        self._client = client

    async def list(
        self,
        *,
        state: ApprovalState = "pending",
        domain: str | None = None,
        organization_id: str | UUID | None = None,
        page_size: int = 50,
    ) -> AsyncIterator[Approval]:
        """Every request in `state` of the token's domains (or of `domain`), oldest first, page by page."""
        organization_id = organization_id or self._client.organization_id
        cursor: str | None = None
        while True:
            params = _wire.approval_params(state, domain, organization_id, page_size, cursor)
            items, cursor = _wire.approval_page(await self._client._request("GET", "/api/approvals", params=params))
            for item in items:
                yield item
            if not cursor:
                return

    async def get(self, approval_id: UUID | str) -> Approval:
        """One request with its state now, its requirements and who satisfied them, its binding and its events."""
        return _wire.approval(await self._client._request("GET", _wire.approval_path(approval_id)))

    async def wait(self, approval_id: UUID | str, *, timeout: float = _wire.DEFAULT_WAIT_TIMEOUT_S) -> Approval:
        """The request once it is no longer pending, or as it is when `timeout` seconds have passed (see
        `Approvals.wait`)."""
        _wire.check_timeout(timeout, "timeout")
        waiting = _wire.Waiting(_wire.Deadline.after(timeout), self._client._retry)
        while True:
            try:
                if waiting.answered(await self._poll(approval_id, waiting.deadline.poll())):
                    return waiting.result()
            except MandateUnavailable as exc:
                pause = waiting.unreachable(exc)
                if pause is None:
                    return waiting.result()
                await asyncio.sleep(pause)

    async def _poll(self, approval_id: UUID | str, wait: float) -> Approval:
        timeout = _wire.long_poll_timeout(self._client._http.timeout, wait)
        params = {"wait": str(wait)}
        return _wire.approval(
            await self._client._request("GET", _wire.approval_path(approval_id), params=params, timeout=timeout)
        )

    async def approve(
        self, approval_id: UUID | str, *, requirement: str | None = None, reason: str | None = None
    ) -> Approval:
        """Satisfy one requirement (name it when the request has several). Returns the request now."""
        return await self._resolve(approval_id, "approve", _wire.resolution_body(requirement, reason))

    async def reject(self, approval_id: UUID | str, *, reason: str | None = None) -> Approval:
        """Reject a pending request: the agent must not proceed, and a resume with it is refused."""
        return await self._resolve(approval_id, "reject", _wire.resolution_body(reason=reason))

    async def withdraw(self, approval_id: UUID | str, *, reason: str | None = None) -> Approval:
        """Withdraw a request the agent no longer needs (pending, or approved and not yet used)."""
        return await self._resolve(approval_id, "withdraw", _wire.resolution_body(reason=reason))

    async def _resolve(self, approval_id: UUID | str, action: str, body: dict[str, Any]) -> Approval:
        path = _wire.approval_path(approval_id, action)
        answer = await self._client._request("POST", path, json=body, idempotent=False, conflict=ApprovalConflict)
        return _wire.approval(answer)
