"""Replay: a stored decision evaluated again from what was stored, and compared (MANDATE.md §3a) — for the API's
replay route, and from the command line (find the decision a person typed, a whole id or its first characters)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from mandate.approvals import resume
from mandate.db import decisions
from mandate.db import governance as governance_queries
from mandate.db.governance import load_governance
from mandate.errors import DatabaseUnavailable, IngestError, MandateError
from mandate.evaluator import Decision, Evaluation, GapCode, ScopeIndex, evaluate, governance_gap
from mandate.governance.cache import Governance, load_row
from mandate.service import attribution_of, explanation_dict, in_utc
from mandate.vocabulary import Row

_HEX = re.compile(r"^[0-9a-f]{1,32}$")
SHOWN_CANDIDATES = 5
MIN_ID_PREFIX = 6
"""Hex digits a decision id typed by a person needs where others than its owner look (the UI, the API): fewer
would match too many ids to be worth a lookup."""


def prefix_range(typed: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The smallest and largest UUID that start with `typed` (hex digits, hyphens ignored, any case)."""
    digits = typed.strip().lower().replace("-", "")
    if not _HEX.match(digits):
        raise MandateError(
            f"{typed!r} is not a decision id: give the id or its first characters (hex digits, e.g. ee860bd9), "
            "as `mandate demo` and the UI show them"
        )
    return uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))


def shared_prefix_range(typed: str) -> tuple[uuid.UUID, uuid.UUID]:
    """`prefix_range` where others than the decision's owner look (the UI, the API): `typed` must hold at least
    MIN_ID_PREFIX hex digits; MandateError otherwise."""
    if len(typed.strip().replace("-", "")) < MIN_ID_PREFIX:
        raise MandateError(f"{typed!r} is too short a decision id prefix: give at least {MIN_ID_PREFIX} hex digits")
    return prefix_range(typed)


async def resolve_decision_id(database_url: str, typed: str) -> uuid.UUID:
    """The one decision whose id starts with `typed`; MandateError saying so when none or several do."""
    low, high = prefix_range(typed)
    try:
        async with await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, row_factory=dict_row, application_name="mandate replay"
        ) as conn:
            found = await decisions.decision_ids_between(conn, low, high, limit=SHOWN_CANDIDATES + 1)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to the database: {str(exc).strip().splitlines()[0]}") from None
    if not found:
        raise MandateError(f"no decision id starts with {typed!r}; `mandate demo` and the UI show decision ids")
    if len(found) > 1:
        shown = ", ".join(str(key) for key in found[:SHOWN_CANDIDATES])
        more = " and more" if len(found) > SHOWN_CANDIDATES else ""
        raise MandateError(f"several decision ids start with {typed!r} ({shown}{more}): type more of the id")
    return found[0]


async def replay_decision(database_url: str, decision_id: uuid.UUID) -> list[Replay]:
    async with await psycopg.AsyncConnection.connect(
        database_url, autocommit=True, row_factory=dict_row, application_name="mandate replay"
    ) as conn:
        governance = await load_governance(conn)
        try:
            return await replay(conn, governance, decision_id)
        except IngestError as exc:
            raise MandateError(exc.message) from None


@dataclass
class Replay:
    """One stage of a stored decision, evaluated again from what was stored (MANDATE.md §3a).

    `replayable` is False for history that no evaluator of ours decided (legacy rows without a stored explanation,
    or whose spec version no longer exists): `reason` says why, and nothing is compared.
    """

    decision_id: str
    stage: str
    replayable: bool
    identical: bool
    verdict_identical: bool
    stored_verdict: str
    replayed_verdict: str | None
    stored_summary: str | None
    replayed_summary: str | None
    differences: list[str]
    reason: str | None = None

    def to_dict(self) -> Row:
        return self.__dict__.copy()


async def replay(conn: AsyncConnection[Row], governance: Governance, decision_id: uuid.UUID) -> list[Replay]:
    """Re-evaluate every stage of a stored decision with its stored spec version, signals, snapshot and scopes."""
    rows = await decisions.stages_to_replay(conn, decision_id)
    if not rows:
        raise IngestError("not_found", f"decision {decision_id} does not exist")
    snapshots: dict[str, Row | None] = {}
    results = []
    for r in rows:
        snapshot_id = r["snapshot_id"]
        if snapshot_id is not None and snapshot_id not in snapshots:
            snapshots[snapshot_id] = await governance_queries.get_snapshot(conn, snapshot_id)
        results.append(replay_stage(governance, r, snapshots.get(snapshot_id) if snapshot_id else None))
    return results


def replay_stage(governance: Governance, r: Row, snapshot_row: Row | None) -> Replay:
    """Replay one stored stage `r` (a `stages_to_replay` row) against `snapshot_row`, its stored snapshot.

    Everything comes from what was stored: the spec version, the signal values (with what the Observe phase
    filled), the snapshot compiled for this spec only, and the scopes the stored explanation names as holding
    authority (scopes are immutable and never deleted, so their ids identify them exactly; a scope that matched
    the decision is always among them). Nothing is reconstructed from wall-clock times.
    """
    stored = r["explanation"]

    def not_replayable(reason: str) -> Replay:
        return Replay(str(r["decision_id"]), r["stage"], False, False, False, r["verdict"], None,
                      (stored or {}).get("summary"), None, [], reason)  # fmt: skip

    if not isinstance(stored, dict):
        return not_replayable("decided before verdicts stored their explanation (no evaluator of ours decided it)")
    d = governance.domain(r["organization_id"], r["domain"])
    spec = governance.specs.get((r["spec_id"], r["spec_version"])) if r["spec_id"] else None
    if r["spec_id"] and spec is None:
        return not_replayable(f"spec {r['spec_id']}@{r['spec_version']} cannot be found or read")
    if d is None:
        return not_replayable(f"domain {r['organization_id']}/{r['domain']} cannot be found")
    observed = stored.get("observe") or {}
    context = {**r["context"], **observed.get("values", {})}
    attribution = attribution_of(r["scope"])
    decision = Decision(
        r["organization_id"], r["domain"], r["intent"], r["stage"], context, attribution, in_utc(r["timestamp"])
    )
    evaluation: Evaluation
    if spec is None:
        evaluation = governance_gap(decision, GapCode.NO_ACTIVE_SPEC)
    else:
        held = _scopes_held(stored)
        resolution = ScopeIndex(s for s in d.scopes if s.scope_id in held).resolve(decision)
        if resolution is None:
            evaluation = governance_gap(decision, GapCode.NO_SCOPE, spec=spec)
        else:
            snapshot = None if snapshot_row is None else load_row(snapshot_row, [spec], d.scopes).snapshot
            evaluation = evaluate(decision, spec, resolution, snapshot)
    replayed = explanation_dict(evaluation, None)
    replayed["observe"] = stored.get("observe")
    replayed = resume.reapply(replayed, stored)  # a resume: the approval's recorded outcome, applied the same way
    differences = sorted(k for k in set(replayed) | set(stored) if stored.get(k) != replayed.get(k))
    return Replay(
        decision_id=str(r["decision_id"]),
        stage=r["stage"],
        replayable=True,
        identical=not differences,
        verdict_identical=r["verdict"] == evaluation.verdict.value,
        stored_verdict=r["verdict"],
        replayed_verdict=evaluation.verdict.value,
        stored_summary=stored.get("summary"),
        replayed_summary=replayed["summary"],
        differences=differences,
    )


def _scopes_held(explanation: Mapping[str, Any]) -> set[str]:
    """The scopes a stored explanation names as holding authority: the recorded one, the tied ones, the ancestors."""
    scope = explanation.get("scope") or {}
    if not scope.get("scope_id"):
        return set()
    return {scope["scope_id"], *(scope.get("tied_with") or ()), *(scope.get("ancestors") or ())}
