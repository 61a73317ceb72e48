"""The governance data the evaluator reads: specs, scopes, policies and the decision being judged.

Everything here is an immutable value built by the caller (from YAML, JSON or database rows). Policies keep their
operator and verdict as the strings they were written with: `compile_snapshot` is where they are checked.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from mandate.evaluator.verdicts import Verdict

SELECTORS: tuple[str, ...] = ("environment", "service", "agent", "system", "tenant")
"""The attribution fields a scope can select on, in their canonical order."""


class SignalType(StrEnum):
    """The declared type of a signal; values are compared with it, never coerced."""

    ENUM = "enum"
    BOOLEAN = "boolean"
    STRING = "string"
    NUMBER = "number"


class SignalSource(StrEnum):
    """Where a signal's value comes from."""

    CONTEXT = "context"  # sent by the agent in the decision's context
    SCOPE = "scope"  # taken from the decision's scope attribution (e.g. `service`)
    TIMESTAMP = "timestamp"  # the decision's timestamp: epoch seconds (number) or ISO 8601 in UTC (string)


@dataclass(frozen=True, slots=True)
class SignalDef:
    """A typed input that policies of a spec may read."""

    name: str
    type: SignalType
    required: bool = False
    source: SignalSource = SignalSource.CONTEXT
    values: tuple[str, ...] = ()  # the allowed values of an enum signal


@dataclass(frozen=True, slots=True)
class Enforcement:
    """What a spec's verdicts mean operationally."""

    pause_requires: tuple[str, ...] = ()
    resolution_timeout_minutes: int | None = None
    default_verdict: Verdict = Verdict.OBSERVE  # when no policy matches
    failure_mode: Verdict = Verdict.OBSERVE  # when evaluation fails


@dataclass(frozen=True, slots=True)
class Spec:
    """The contract for one kind of decision in one domain (one version of it)."""

    spec_id: str
    version: str
    organization_id: str
    domain: str
    intent: str
    stage: str
    signals: tuple[SignalDef, ...]
    allowed_verdicts: frozenset[Verdict]
    enforcement: Enforcement = field(default_factory=Enforcement)

    @property
    def ref(self) -> str:
        """`spec_id@version`, as explanations name a spec."""
        return f"{self.spec_id}@{self.version}"


@dataclass(frozen=True, slots=True)
class Scope:
    """Where authority applies. Non-null selectors must all equal the decision's attribution for it to match."""

    scope_id: str
    organization_id: str
    domain: str
    owning_team: str | None = None
    environment: str | None = None
    service: str | None = None
    agent: str | None = None
    system: str | None = None
    tenant: str | None = None

    @property
    def selectors(self) -> dict[str, str]:
        """The non-null selector fields, in canonical order."""
        return {name: value for name in SELECTORS if (value := getattr(self, name)) is not None}


@dataclass(frozen=True, slots=True)
class Condition:
    """`signal operator value`, e.g. `content_length >= 1048576`. Checked against the spec at snapshot load."""

    signal: str
    operator: str
    value: object = None


@dataclass(frozen=True, slots=True)
class Policy:
    """A declarative rule bound to one spec and one scope: when every condition holds, it yields `verdict`."""

    policy_id: str
    spec_id: str
    scope_id: str
    verdict: str
    conditions: tuple[Condition, ...] = ()
    name: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The decision event as the evaluator sees it. `timestamp` is the agent's; naive datetimes are taken as UTC."""

    organization_id: str
    domain: str
    intent: str
    stage: str
    context: Mapping[str, object]
    attribution: Mapping[str, str | None]
    timestamp: datetime
