"""One decision in the UI:

    GET /decisions/{decision_id}    header, timeline, the stored explanation, spec and policy panels, its approval
                                    requests with their history, the approvals it resumed with, findings

A short id (any unique prefix of 6+ hex digits) redirects to the whole id's page; several matches are listed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mandate import approval_workflow as workflow
from mandate.approvals.state import Approval
from mandate.db import approvals as aq
from mandate.db import decisions as q
from mandate.db import governance as gq
from mandate.replay import MIN_ID_PREFIX
from mandate.service import stored_flips
from mandate.vocabulary import Row
from mandate.web.access import principal, visible_rows
from mandate.web.api import state
from mandate.web.inputs import check_parameters
from mandate.web.ui import (
    PAGE_SIZES,
    UTC_CLOCK,
    Clock,
    Conn,
    Place,
    Problems,
    _clock,
    _place,
    decision_url,
    find_decisions,
    governance_links,
    here,
    link,
    not_found,
    page,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_parameters)])


@dataclass
class StageView:
    """One stage of a decision with its verdict, explanation and the governance it was evaluated under."""

    decision: Row
    verdict: Row | None
    explanation: Row | None
    spec: Row | None
    snapshot: Row | None
    policies: list[Row]
    scope: Row | None
    flips: list[dict[str, object]] = field(default_factory=list)  # what would give another verdict

    @property
    def ordered_policies(self) -> list[Row]:
        """Candidates as stored, shown winner first, then the other matches (display order only)."""
        e = self.explanation or {}
        winner = e.get("winning_policy_id")
        rank = {True: 1, False: 2}
        return sorted(
            e.get("policies") or [], key=lambda p: 0 if p["policy_id"] == winner else rank[bool(p.get("matched"))]
        )

    @property
    def winner(self) -> Row | None:
        e = self.explanation or {}
        return next((p for p in e.get("policies") or [] if p["policy_id"] == e.get("winning_policy_id")), None)


async def _prefix_answer(conn: Conn, request: Request, typed: str, place: Place, clock: Clock) -> Response:
    """The page for a typed prefix of a decision id: a redirect to the one match, the list of several, or a 404."""
    typo = Problems()
    found = await find_decisions(conn, request, typed, place, typo)
    if len(found) == 1:
        return RedirectResponse(decision_url(found[0], here(place, clock)), status_code=307)
    if not found:
        not_hex = typo.items[0][1].endswith("hex digits")
        return not_found(
            f"{typed[:80]!r} is not a decision id." if not_hex else f"No decision id starts with {typed[:80]!r}.",
            f"Decision ids are UUIDs, such as 8f14e45f-ceea-467f-a0f6-7d3c1b2a9e01; their first "
            f"{MIN_ID_PREFIX} or more characters are enough. Find one on the decisions page.",
            clock,
        )
    return page(
        "matches.html",
        nav="decisions",
        clock=clock,
        place=place,
        typed=typed,
        matches=found,
        decision_url=lambda row: decision_url(row, here(place, clock)),
    )


async def _stage_views(conn: Conn, request: Request, key: UUID, rows: list[Row]) -> list[StageView]:
    """Each stored stage of a decision with its verdict and the spec, snapshot policies and scope it was decided
    under (as stored: nothing is evaluated again)."""
    org, domain = rows[-1]["organization_id"], rows[-1]["domain"]
    verdicts = await q.get_verdicts(conn, key)
    scopes = {s["scope_id"]: s for s in await gq.list_scopes(conn, org, domain)}
    specs: dict[tuple[str, str], Row] = {}
    snapshots: dict[UUID, Row | None] = {}
    stages = []
    for row in rows:
        verdict = next((v for v in reversed(verdicts) if v["stage"] == row["stage"]), None)
        if row["spec_id"] and (row["spec_id"], row["spec_version"]) not in specs:
            for v in await gq.get_spec_versions(conn, row["spec_id"], org):
                specs[(v["spec_id"], v["version"])] = v
        snapshot_id = verdict["snapshot_id"] if verdict else None
        if snapshot_id is not None and snapshot_id not in snapshots:
            snapshots[snapshot_id] = await gq.get_snapshot(conn, snapshot_id)
        snapshot = snapshots.get(snapshot_id) if snapshot_id else None
        policies = [p for p in (snapshot or {}).get("policies") or [] if p.get("spec_id") == row["spec_id"]]
        stages.append(
            StageView(
                decision=row,
                verdict=verdict,
                explanation=verdict["explanation"] if verdict else None,
                spec=specs.get((row["spec_id"], row["spec_version"])),
                snapshot=snapshot,
                policies=policies,
                scope=scopes.get(verdict["scope_id"]) if verdict and verdict["scope_id"] else None,
                flips=stored_flips(state(request).governance, verdict) if verdict else [],
            )
        )
    return stages


@router.api_route("/decisions/{decision_id}", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def decision_page(request: Request, decision_id: str) -> Response:
    problems = Problems()
    clock = _clock(request, problems)
    try:
        key = UUID(decision_id)
    except ValueError:
        key = None
    async with state(request).pool.connection() as conn:
        place = await _place(conn, request, problems, default_domain=False)
        if key is None and not problems:  # the short id the list and the demo show, or any unique prefix
            return await _prefix_answer(conn, request, decision_id, place, clock)
        if problems:
            return page(
                "message.html",
                400,
                nav="",
                clock=clock,
                title="Bad link",
                message="This link is not valid.",
                hint="; ".join(m for _, m in problems.items),
            )
        assert key is not None  # a prefix was answered above
        rows = [
            r
            for r in visible_rows(request, await q.get_decision(conn, key), decisions=True)
            if (place.organization_id is None or r["organization_id"] == place.organization_id)
            and (place.domain is None or r["domain"] == place.domain)
        ]
        if not rows:
            where = f" in domain {place.domain}" if place.domain else ""
            return not_found(
                f"Decision {key} does not exist{where}.",
                "Check the id, or look for the decision on the decisions page (with the right domain selected).",
                clock,
            )
        org, domain = rows[-1]["organization_id"], rows[-1]["domain"]
        timeline = await q.get_timeline(conn, key)
        stages = await _stage_views(conn, request, key, rows)
        approvals, findings = await decision_approvals(conn, request, rows[-1], stages)
    now = datetime.now(UTC)
    place_params = {"organization_id": str(org), "domain": domain, "tz": None if clock is UTC_CLOCK else clock.name}
    return page(
        "decision.html",
        nav="decisions",
        clock=clock,
        decision_id=str(key),
        latest=stages[-1],
        stages=stages,
        timeline=timeline,
        back_url=link("/", place_params),
        specs_url=link("/specs", place_params),
        scopes_url=link("/scopes", place_params),
        approvals=[a.to_dict(now) for a in approvals],
        findings=findings,
        now=now,
        stage_url=lambda decision_id, where, stage: decision_url(
            {"decision_id": decision_id, "domain": where, "stage": stage}, place_params
        ),
        **governance_links(place_params),
    )


async def decision_approvals(
    conn: Conn, request: Request, decision: Row, stages: list[StageView]
) -> tuple[list[Approval], list[Row]]:
    """The approval requests of a decision's PAUSEd stages, then those its resumes presented (each explanation's
    `approval` section) that the token may see, and the decision's findings."""
    own = await aq.of_decision(conn, decision["decision_id"])
    known = {a.approval_id for a in own}
    presented: list[UUID] = []
    for s in stages:
        section = (s.explanation or {}).get("approval")
        if not isinstance(section, Mapping):
            continue
        try:
            key = UUID(str(section.get("approval_id")))
        except ValueError:
            continue
        if key not in known:
            known.add(key)
            presented.append(key)
    p = principal(request)
    approvals = [a for a in [*own, *await aq.get_many(conn, presented)] if workflow.visible(p, a)]
    findings, _ = await aq.list_findings(
        conn,
        organization_id=decision["organization_id"],
        domains=None,
        domain=decision["domain"],
        decision_id=decision["decision_id"],
        token_id=p.own_decisions_only,
        limit=max(PAGE_SIZES),
        cursor=None,
    )
    return approvals, findings
