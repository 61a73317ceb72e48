"""`MandateClient`: the synchronous client."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import Any
from uuid import UUID, uuid4

import httpx

from mandate.client import _trace, _wire
from mandate.client._approvals import Approvals
from mandate.client._exceptions import MandateConflict, MandateError
from mandate.client._guard import ContextArg, Guard, OnPause, TargetArg, TextArg
from mandate.client._verdict import Verdict

JSON = dict[str, Any]


class MandateClient:
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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        config = _wire.settings(base_url, organization_id, domain, retries, backoff)
        self.base_url, self.organization_id, self.domain = config.base_url, config.organization_id, config.domain
        self._retry = config.retry
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=_wire.headers(token),
            timeout=timeout,
            transport=transport,
            event_hooks={"request": [_trace.inject]},
        )
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

    def _request(
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
                response = self._http.request(method, path, json=json, params=params, timeout=timeout)
            except httpx.TransportError as exc:
                time.sleep(attempts.after_error(exc))
                continue
            delay = attempts.after_response(response)
            if delay is None:
                return _wire.answer(response, conflict)
            time.sleep(delay)

    # -- decisions -----------------------------------------------------------------------------------------------

    def decide(
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
        verdict = _wire.verdict(self._request("POST", _wire.DECISIONS_PATH, json=body))
        if on_pause == "return" or not verdict.paused:
            return verdict
        approval_id = _wire.waitable(verdict)
        try:
            approval = self.approvals.wait(approval_id, timeout=wait_timeout)
        except MandateError as exc:
            raise _wire.wait_failed(verdict, exc, wait_timeout) from exc
        if not _wire.after_wait(verdict, approval, wait_timeout):
            return replace(verdict, approval=approval)
        resume = _wire.resume_body(body, approval_id)
        return replace(_wire.verdict(self._request("POST", _wire.DECISIONS_PATH, json=resume)), approval=approval)

    def decide_many(self, decisions: Iterable[Mapping[str, Any]]) -> list[Verdict | MandateError]:
        """Send up to 1,000 decisions in one request (`POST /api/decisions/batch`), for agents and gateways that
        record many (`executed` stages). Each mapping holds `decide`'s arguments (`intent`, `stage`, `context`,
        `scope`, `target`, `actor`, optionally `decision_id`, `domain`, `timestamp`, …). Returns one entry per
        decision, in order: its `Verdict`, or the error it got alone (a `MandateValidationError`, a
        `MandateConflict`, …) — returned, not raised, since a bad decision fails alone. Raises only when the
        request itself fails. Every decision_id is fixed before the first attempt, so a retry stores nothing
        twice."""
        body = _wire.batch_body(decisions, self.organization_id, self.domain)
        return _wire.batch_results(self._request("POST", _wire.BATCH_PATH, json=body))

    def report_outcome(
        self,
        decision_id: UUID | str,
        outcome: str,
        *,
        success: bool | None = None,
        stage: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> JSON:
        """Record what happened after the verdict (an `outcome reported` timeline entry); returns that entry.

        Not idempotent (each call appends an entry), so it is retried only when the request surely did not
        arrive."""
        path = _wire.decision_path(decision_id, "outcome")
        result: JSON = self._request(
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
    ) -> Guard:
        """A guard for a tool: ask before it runs, refuse on BLOCK (`Blocked`) and PAUSE (`Paused`, unless
        `on_pause` says otherwise), run it, report the outcome. Use it as a context manager (`with … as verdict:`)
        or as a decorator, where `context`, `target` and `unstructured_context` may be functions of the tool's
        arguments. Each use is a new decision."""
        return Guard(
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

    def get_decision(self, decision_id: UUID | str) -> JSON:
        """The stored decision: the latest stage's fields at the top, every stage under `stages`."""
        result: JSON = self._request("GET", _wire.decision_path(decision_id))
        return result

    def get_verdict(self, decision_id: UUID | str, *, stage: str | None = None) -> Verdict:
        """The stored verdict of a decision (its latest stage, or `stage`), with its full explanation."""
        body = self._request("GET", _wire.decision_path(decision_id, "verdict"))
        return _wire.verdict(_wire.verdict_for_stage(body, stage))

    def get_timeline(self, decision_id: UUID | str) -> list[JSON]:
        """The decision's append-only timeline entries, oldest first."""
        body = self._request("GET", _wire.decision_path(decision_id, "timeline"))
        entries: list[JSON] = body["entries"]
        return entries

    def list_decisions(self, *, page_size: int = 50, **filters: Any) -> Iterator[JSON]:
        """Every decision matching `filters` (domain, verdict, intent, stage, agent, service, actor, target,
        since, until, organization_id), newest first, fetched page by page as the iterator advances."""
        organization_id = filters.pop("organization_id", None) or self.organization_id
        cursor: str | None = None
        while True:
            params = _wire.list_params(filters, organization_id, page_size, cursor)
            page = self._request("GET", _wire.DECISIONS_PATH, params=params)
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def replay(self, decision_id: UUID | str) -> JSON:
        """Re-evaluate a stored decision with its stored spec, signals and snapshot; `identical` says whether the
        verdict and explanation are reproduced exactly."""
        result: JSON = self._request("GET", _wire.decision_path(decision_id, "replay"))
        return result

    def health(self) -> JSON:
        """The server's health: status, versions, database. `MandateUnavailable` when it is not serving (its
        `body` says why, e.g. `"status": "migrating"`); a 503 is reported at once, not retried."""
        result: JSON = self._request("GET", "/api/health", retry_status=False)
        return result
