"""`MandateClient`: the synchronous client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, TypeVar

import httpx

from mandate.client import _ops, _trace
from mandate.client._approvals import Approvals
from mandate.client._base import ClientBase
from mandate.client._guard import Guard

JSON = dict[str, Any]
T = TypeVar("T")


@_ops.methods
class MandateClient(ClientBase[httpx.BaseTransport]):
    """A thin client of a Mandate server, shareable between threads. It sends decisions and reads what Mandate
    stored; it holds no governance logic.

        with MandateClient("http://127.0.0.1:3000", organization_id=ORG, domain="finance") as mandate:
            verdict = mandate.decide("database.drop_table", "pre_commit", context={...}, scope={...},
                                     target="production.users", actor="db-agent")
            if verdict.blocked: ...

    `organization_id` and `domain` are defaults for `decide` (each call may override them). `token` (default: the
    MANDATE_API_TOKEN environment variable) is sent as `Authorization: Bearer …`. `timeout` is per attempt; `retries` is how many times a failed attempt is
    retried (connection errors, timeouts, 503) with exponential backoff from `backoff` seconds, with jitter.
    """

    _http: httpx.Client

    def _open(self, **options: Any) -> httpx.Client:
        return httpx.Client(**options, event_hooks={"request": [_trace.inject]})

    def _attach(self) -> None:
        self.approvals = Approvals(self)
        """The approval requests of PAUSEs: list, get, wait, approve, reject, withdraw."""

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MandateClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MandateClient({self.base_url!r}, organization_id={self.organization_id!r}, domain={self.domain!r})"

    # -- transport -----------------------------------------------------------------------------------------------

    @property
    def _session(self) -> MandateClient:
        return self

    def _run(self, op: _ops.Op[T]) -> T:
        """Drive an operation to its result: send its requests with `httpx.Client`, sleep with `time.sleep`."""
        drive = _ops.Drive(op)
        for step in drive:
            if isinstance(step, _ops.Sleep):
                time.sleep(step.seconds)
                continue
            try:
                drive.reply = self._http.request(
                    step.method, step.path, json=step.json, params=step.params, timeout=step.timeout
                )
            except httpx.TransportError as exc:
                drive.error = exc
        return drive.result

    # -- decisions -----------------------------------------------------------------------------------------------

    decide = _ops.sync(_ops.decide)
    decide_many = _ops.sync(_ops.decide_many)
    report_outcome = _ops.sync(_ops.report_outcome)

    guard = _ops.constructor(
        Guard,
        """A guard for a tool: ask before it runs, refuse on BLOCK (`Blocked`) and PAUSE (`Paused`, unless
        `on_pause` says otherwise), run it, report the outcome. Use it as a context manager (`with … as verdict:`)
        or as a decorator, where `context`, `target` and `unstructured_context` may be functions of the tool's
        arguments. Each use is a new decision.""",
    )

    # -- reads ---------------------------------------------------------------------------------------------------

    get_decision = _ops.sync(_ops.get_decision)
    get_verdict = _ops.sync(_ops.get_verdict)
    get_timeline = _ops.sync(_ops.get_timeline)

    def list_decisions(self, *, page_size: int = 50, **filters: Any) -> Iterator[JSON]:
        """Every decision matching `filters` (domain, verdict, intent, stage, agent, service, actor, target,
        since, until, organization_id), newest first, fetched page by page as the iterator advances."""
        pages = _ops.decision_pages(self, page_size, filters)
        while (page := pages.next()) is not None:
            yield from self._run(page)

    replay = _ops.sync(_ops.replay)
    health = _ops.sync(_ops.health)
