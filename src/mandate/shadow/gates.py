"""Publish gates: budgets a shadow result must respect before `mandate apply --gate` publishes a bundle.

A gates file (YAML or JSON) lists gates; each counts the decisions whose verdict goes `from` → `to` (either may be
`ANY`; `to` may be `UNEVALUABLE`), optionally only in one domain, intent or scope (the scope or its descendants),
and allows at most `max` of them, or at most `max_percent` of the decisions whose verdict is `from` in that
selection::

    gates:
      - name: no BLOCK may become ALLOW in payments
        from: BLOCK
        to: ALLOW
        scope: payments.prod
        max: 0
      - name: at most 2 % of PAUSEs may become ALLOW
        from: PAUSE
        to: ALLOW
        max_percent: 2
      - name: every decision stays evaluable
        from: ANY
        to: UNEVALUABLE
        max: 0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mandate.errors import GovernanceError
from mandate.shadow.tally import Tally

VerdictName = Literal["ALLOW", "PAUSE", "BLOCK", "OBSERVE", "UNEVALUABLE", "ANY"]


class Gate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str | None = None
    from_: VerdictName = Field("ANY", alias="from")
    to: VerdictName = "ANY"
    domain: str | None = None
    intent: str | None = None
    scope: str | None = None
    max: Annotated[int, Field(ge=0)] | None = None
    max_percent: Annotated[float, Field(ge=0, le=100)] | None = None

    @model_validator(mode="after")
    def _one_budget(self) -> Gate:
        if (self.max is None) == (self.max_percent is None):
            raise ValueError("give exactly one of max and max_percent")
        if self.from_ == self.to != "ANY":
            raise ValueError(f"from and to are both {self.to}: that is no change")
        return self

    @property
    def label(self) -> str:
        where = ", ".join(f"{k} {v}" for k, v in (("domain", self.domain), ("intent", self.intent),
                                                 ("scope", self.scope)) if v)  # fmt: skip
        budget = f"at most {self.max}" if self.max is not None else f"at most {self.max_percent} %"
        return self.name or f"{budget} {self.from_} → {self.to}" + (f" in {where}" if where else "")


class GatesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gates: list[Gate]


@dataclass
class GateResult:
    gate: Gate
    count: int
    base: int  # decisions whose verdict is `from` in the selection (for max_percent)
    offenders: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        if self.gate.max is not None:
            return self.count <= self.gate.max
        assert self.gate.max_percent is not None
        return self.count <= self.base * self.gate.max_percent / 100

    @property
    def measured(self) -> str:
        if self.gate.max is not None:
            return f"{self.count} decision(s)"
        share = 100 * self.count / self.base if self.base else 0.0
        return f"{self.count} of {self.base} ({share:.2f} %)"


def load_gates(path: Path) -> list[Gate]:
    """Read a gates file; `GovernanceError` naming the file and every problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GovernanceError(f"{path}: cannot read the gates file: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise GovernanceError(f"{path}: not YAML or JSON: {exc}") from None
    try:
        return GatesFile.model_validate(data).gates
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in exc.errors())
        raise GovernanceError(f"{path}: {problems}") from None


def check(gates: list[Gate], tally: Tally) -> list[GateResult]:
    """Each gate measured against a shadow tally."""
    results = []
    for gate in gates:
        result = GateResult(gate, 0, 0)
        for key, n in tally.gate_keys.items():
            _org, domain, scope, intent, before, after = key
            if not _selected(gate, domain, scope, intent):
                continue
            if gate.from_ in ("ANY", before):
                result.base += n
                if before != after and gate.to in ("ANY", after):
                    result.count += n
                    result.offenders.extend(tally.offenders.get(key, [])[: 20 - len(result.offenders)])
        results.append(result)
    return results


def _selected(gate: Gate, domain: str, scope: str, intent: str) -> bool:
    if gate.domain is not None and gate.domain != domain:
        return False
    if gate.intent is not None and gate.intent != intent:
        return False
    return gate.scope is None or scope == gate.scope or scope.startswith(gate.scope + ".")
