"""Judging stored decisions under two governances and counting what changes — pure, no I/O.

A stored decision stage is evaluated the way ingestion evaluates a new one (`service.decide`: spec resolution,
signal validation, scope resolution, the evaluator), from its stored signals (with what the Observe phase filled)
and attribution, once under the governance in force (the *baseline*) and once under the *candidate*. A decision
the candidate cannot evaluate at all (its spec now requires a signal that was never sent, or a type changed) is
`UNEVALUABLE`, with the problems. `Tally` counts everything and keeps the first examples in key order; tallies of
consecutive batches merge, so batches can be judged in worker processes.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from mandate.db.history import HistoryRow
from mandate.evaluator import Evaluation
from mandate.governance.cache import Governance
from mandate.service import DecisionRequest, IngestError, decide

_NO_ID = uuid.UUID(int=0)
UNEVALUABLE = "UNEVALUABLE"
"""The verdict column of a decision that could not be evaluated (its problems are in the example)."""
DIMENSIONS = ("scope", "intent", "owning_team", "policy")
OFFENDERS_KEPT = 20  # decision ids kept per gate key, to list offending decisions


@dataclass(frozen=True, slots=True)
class Judgement:
    """One decision under one governance: the verdict (or UNEVALUABLE), and what decided it."""

    verdict: str
    scope_id: str | None
    owning_team: str | None
    policy: str | None
    evaluation: Evaluation | None
    problems: tuple[str, ...] = ()

    def detail(self) -> dict[str, Any]:
        """The condition-level explanation, for an example."""
        if self.evaluation is None:
            return {"verdict": self.verdict, "summary": "; ".join(self.problems), "problems": list(self.problems)}
        explanation = self.evaluation.to_dict()
        return {key: explanation[key] for key in ("verdict", "reason", "summary", "scope", "winning_policy_id",
                                                  "policies", "errors", "gap")}  # fmt: skip


def judge(governance: Governance, row: HistoryRow) -> Judgement:
    """Evaluate a stored decision stage under `governance`, as ingestion would today."""
    _, stage, org, domain, intent, context, attribution, timestamp, _, _, observed = row
    d = governance.domain(org, domain)
    if d is None:
        return Judgement(UNEVALUABLE, None, None, None, None, (f"domain {org}/{domain} does not exist",))
    request = DecisionRequest(
        decision_id=_NO_ID,  # evaluation never reads it
        organization_id=org,
        domain=domain,
        intent=intent,
        stage=stage,
        actor="",
        target="",
        context={**context, **(observed or {})},
        scope=attribution,
        timestamp=timestamp,
    )
    try:
        evaluation, _, _ = decide(request, d)
    except IngestError as exc:
        return Judgement(UNEVALUABLE, None, None, None, None, tuple(p.message for p in exc.problems))
    return Judgement(
        evaluation.verdict.value, evaluation.scope_id, evaluation.owning_team, evaluation.winning_policy_id, evaluation
    )


@dataclass
class Tally:
    """What a candidate changes over a run of stored decisions. Mergeable in key order (`merge`)."""

    examples_per_change: int = 5
    evaluated: int = 0
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (from, to), unchanged included
    groups: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)  # (dimension, key, from, to), changed
    gate_keys: Counter[tuple[str, str, str, str, str, str]] = field(default_factory=Counter)
    """(organization_id, domain, scope, intent, from, to) for every decision: what gates count"""
    offenders: dict[tuple[str, str, str, str, str, str], list[str]] = field(default_factory=dict)
    examples: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    drift: int = 0  # decisions the baseline decides differently from what was stored
    drift_examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(n for (before, after), n in self.transitions.items() if before != after)

    @property
    def unevaluable(self) -> int:
        return sum(n for (before, after), n in self.transitions.items() if after == UNEVALUABLE != before)

    def add(self, row: HistoryRow, before: Judgement, after: Judgement) -> None:
        self.evaluated += 1
        change = (before.verdict, after.verdict)
        self.transitions[change] += 1
        scope = before.scope_id or after.scope_id or "(none)"
        key = (row[2], row[3], scope, row[4], *change)
        self.gate_keys[key] += 1
        stored = row[8]
        if stored is not None and stored != before.verdict:
            self.drift += 1
            if len(self.drift_examples) < self.examples_per_change:
                self.drift_examples.append({**_identity(row), "stored": stored, "now": before.detail()})
        if change[0] == change[1]:
            return
        offenders = self.offenders.setdefault(key, [])
        if len(offenders) < OFFENDERS_KEPT:
            offenders.append(row[0])
        for dimension, value in zip(
            DIMENSIONS,
            (scope, row[4], after.owning_team or before.owning_team, after.policy or before.policy),
            strict=True,
        ):
            self.groups[(dimension, value or "(none)", *change)] += 1
        kept = self.examples.setdefault(change, [])
        if len(kept) < self.examples_per_change:
            kept.append({**_identity(row), "before": before.detail(), "after": after.detail()})

    def merge(self, later: Tally) -> None:
        """Add the tally of the decisions that come after this one's in key order."""
        self.evaluated += later.evaluated
        self.transitions.update(later.transitions)
        self.groups.update(later.groups)
        self.gate_keys.update(later.gate_keys)
        for key, ids in later.offenders.items():
            kept = self.offenders.setdefault(key, [])
            kept.extend(ids[: OFFENDERS_KEPT - len(kept)])
        for change, examples in later.examples.items():
            shown = self.examples.setdefault(change, [])
            shown.extend(examples[: self.examples_per_change - len(shown)])
        self.drift += later.drift
        self.drift_examples.extend(later.drift_examples[: self.examples_per_change - len(self.drift_examples)])


def _identity(row: HistoryRow) -> dict[str, Any]:
    return {"decision_id": row[0], "stage": row[1], "organization_id": row[2], "domain": row[3], "intent": row[4]}


def judge_batch(baseline: Governance, candidate: Governance, rows: list[HistoryRow], examples: int) -> Tally:
    """The tally of one batch of stored decisions (in key order).

    A domain whose governance the candidate leaves exactly as it is (same active specs, snapshot and scopes) is
    judged once: the candidate would decide its decisions as today does."""
    tally = Tally(examples)
    unchanged: dict[tuple[str, str], bool] = {}
    for row in rows:
        key = (row[2], row[3])
        same = unchanged.get(key)
        if same is None:
            before_d, after_d = baseline.domain(*key), candidate.domain(*key)
            same = unchanged[key] = (
                before_d is not None and after_d is not None and before_d.fingerprint() == after_d.fingerprint()
            )
        before = judge(baseline, row)
        tally.add(row, before, before if same else judge(candidate, row))
    return tally
