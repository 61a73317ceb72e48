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

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, TypeVar
from uuid import UUID

from mandate.client import _ops
from mandate.client._approval import Approval, ApprovalState

if TYPE_CHECKING:
    from mandate.client._async_client import AsyncMandateClient
    from mandate.client._client import MandateClient

T = TypeVar("T")


@_ops.methods
class Approvals:
    """The approval requests, through a `MandateClient` (its URL, token, timeouts and retries)."""

    def __init__(self, client: MandateClient) -> None:
        self._client = client

    @property
    def _session(self) -> MandateClient:
        return self._client

    def _run(self, op: _ops.Op[T]) -> T:
        return self._client._run(op)

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
        pages = _ops.approval_pages(self._client, state, domain, organization_id, page_size)
        while (page := pages.next()) is not None:
            yield from self._run(page)

    get = _ops.sync(_ops.get_approval)
    wait = _ops.sync(_ops.wait_approval)
    approve = _ops.sync(_ops.approve)
    reject = _ops.sync(_ops.reject)
    withdraw = _ops.sync(_ops.withdraw)


@_ops.methods
class AsyncApprovals:
    """The approval requests, through an `AsyncMandateClient`: the methods of `Approvals`, awaited; `list` is an
    async iterator."""

    def __init__(self, client: AsyncMandateClient) -> None:
        self._client = client

    @property
    def _session(self) -> AsyncMandateClient:
        return self._client

    async def _run(self, op: _ops.Op[T]) -> T:
        return await self._client._run(op)

    async def list(
        self,
        *,
        state: ApprovalState = "pending",
        domain: str | None = None,
        organization_id: str | UUID | None = None,
        page_size: int = 50,
    ) -> AsyncIterator[Approval]:
        """Every request in `state` of the token's domains (or of `domain`), oldest first, page by page."""
        pages = _ops.approval_pages(self._client, state, domain, organization_id, page_size)
        while (page := pages.next()) is not None:
            for item in await self._run(page):
                yield item

    get = _ops.asynchronous(
        _ops.get_approval,
        "One request with its state now, its requirements and who satisfied them, its binding and its events.",
    )
    wait = _ops.asynchronous(
        _ops.wait_approval,
        """The request once it is no longer pending, or as it is when `timeout` seconds have passed (see
        `Approvals.wait`).""",
    )
    approve = _ops.asynchronous(
        _ops.approve, "Satisfy one requirement (name it when the request has several). Returns the request now."
    )
    reject = _ops.asynchronous(
        _ops.reject, "Reject a pending request: the agent must not proceed, and a resume with it is refused."
    )
    withdraw = _ops.asynchronous(
        _ops.withdraw, "Withdraw a request the agent no longer needs (pending, or approved and not yet used)."
    )
