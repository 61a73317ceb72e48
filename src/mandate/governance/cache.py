"""The in-memory governance the ingestion path reads: specs, scopes and compiled snapshots per domain.

Governance rows are immutable (append-only), so a cache is always right about what it holds; it only has to
learn about new rows. Servers LISTEN on `mandate_governance` (migration 009 NOTIFYs on every governance insert)
and reload; ingestion then needs no query but its own write.

Loading is **total** (MANDATE.md §3a): any row, whoever wrote it, is either used or reported as a
`GovernanceWarning` — never an exception that stops a server from starting or a running one from reloading.

- a spec row that cannot be read is skipped: its intent/stage behaves as "no active spec" (a governance gap);
- a policy that names no spec of its domain can never apply;
- a policy bound to a spec but not compilable marks that spec broken in the snapshot: every evaluation of the spec
  is an evaluation error, and the spec's failure mode decides. Other specs of the domain are unaffected.

The active snapshot of a domain is the one with the highest version (never "latest created_at"); snapshots are
compiled when loaded, against the spec version in force for each spec_id (`in_force`), never at request time.
The rows are read by `db.governance.load_governance`; this module only builds from them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mandate.evaluator import (
    CompiledSnapshot,
    LoadedSnapshot,
    LoadProblem,
    Scope,
    ScopeIndex,
    Spec,
    load_snapshot,
    spec_problems,
)
from mandate.governance.in_force import specs_in_force as specs_in_force_of
from mandate.governance.records import (
    RecordError,
    policy_from_record,
    policy_label,
    policy_spec_id,
    scope_from_record,
    spec_from_record,
)
from mandate.vocabulary import Row


@dataclass(frozen=True)
class GovernanceWarning:
    """A governance row the server cannot (fully) use, and what that means for decisions."""

    organization_id: str | None
    domain: str | None
    subject: str  # what it is about: `spec x@1`, `policy p of snapshot … (version n)`, `scope s`
    code: str
    message: str  # what is wrong, and what it means for evaluation

    def __str__(self) -> str:
        where = f"{self.organization_id}/{self.domain}: " if self.domain else ""
        return f"{where}{self.subject}: {self.message}"

    def to_dict(self) -> dict[str, str | None]:
        return {
            "organization_id": self.organization_id,
            "domain": self.domain,
            "subject": self.subject,
            "code": self.code,
            "message": self.message,
        }


@dataclass
class DomainGovernance:
    """Everything needed to evaluate decisions of one (organization, domain)."""

    organization_id: str
    domain: str
    scopes: list[Scope] = field(default_factory=list)
    active_specs: dict[tuple[str, str], Spec] = field(default_factory=dict)  # (intent, stage) -> spec
    snapshot: CompiledSnapshot | None = None  # None: the domain has no snapshot yet (an empty one)
    scope_index: ScopeIndex = field(default_factory=lambda: ScopeIndex(()))

    def fingerprint(self) -> tuple[object, ...]:
        """What decides every evaluation in this domain. Governance rows are immutable, so their ids name their
        content: two DomainGovernance with equal fingerprints decide every decision alike."""
        specs = sorted((key, spec.spec_id, spec.version) for key, spec in self.active_specs.items())
        snapshot = None if self.snapshot is None else (self.snapshot.snapshot_id, self.snapshot.version)
        return (tuple(specs), snapshot, tuple(sorted(scope.scope_id for scope in self.scopes)))


@dataclass
class Governance:
    """A consistent picture of all governance, loaded at one moment, with every problem found in it."""

    organizations: set[str] = field(default_factory=set)
    domains: dict[tuple[str, str], DomainGovernance] = field(default_factory=dict)
    specs: dict[tuple[str, str], Spec] = field(default_factory=dict)  # (spec_id, version) -> spec, every version
    warnings: list[GovernanceWarning] = field(default_factory=list)

    def domain(self, organization_id: str, domain: str) -> DomainGovernance | None:
        return self.domains.get((organization_id, domain))

    def sole_organization(self) -> str | None:
        return next(iter(self.organizations)) if len(self.organizations) == 1 else None


GovernanceRows = tuple[list[Row], list[Row], list[Row], list[Row], list[Row]]
"""What `build` takes: the rows of organizations, domains, scopes, specs and active snapshots (plain, picklable), as
`db.governance.governance_rows` reads them."""


def build(
    orgs: Iterable[Row], domains: Iterable[Row], scopes: Iterable[Row], specs: Iterable[Row], snapshots: Iterable[Row]
) -> Governance:
    """Governance from its rows (`GovernanceRows`): every row used or reported."""
    g = Governance()
    g.organizations = {r["id"] for r in orgs}
    for r in domains:
        g.domains[(r["organization_id"], r["domain"])] = DomainGovernance(r["organization_id"], r["domain"])
    for r in scopes:
        d = g.domains.get((r["organization_id"], r["domain"]))
        if d is None:
            continue
        try:
            d.scopes.append(scope_from_record(r))
        except RecordError as exc:
            subject = f"scope {r['scope_id']}"
            warning = GovernanceWarning(
                d.organization_id, d.domain, subject, "unreadable_scope", f"{exc}; no authority"
            )
            g.warnings.append(warning)
    for r in specs:
        _add_spec(g, r)
    for d in g.domains.values():
        d.scope_index = ScopeIndex(d.scopes)
    for row in snapshots:
        d = g.domains.get((row["organization_id"], row["domain"]))
        if d is not None:
            d.snapshot = _load_snapshot(g, d, row)
    return g


def _add_spec(g: Governance, r: Row) -> None:
    subject = f"spec {r['spec_id']}@{r['version']}"
    try:
        spec = spec_from_record(r)
    except RecordError as exc:
        g.warnings.append(
            GovernanceWarning(
                r["organization_id"],
                r["domain"],
                subject,
                "unreadable_spec",
                f"{exc}; decisions of {r['intent']}/{r['stage']} find no active spec in it (a governance gap)",
            )
        )
        return
    g.specs[(spec.spec_id, spec.version)] = spec
    d = g.domains.get((spec.organization_id, spec.domain))
    if d is None or r["current_status"] != "active":
        return
    d.active_specs[(spec.intent, spec.stage)] = spec
    for problem in spec_problems(spec):
        g.warnings.append(
            GovernanceWarning(d.organization_id, d.domain, subject, problem.code, f"{problem.field}: {problem.message}")
        )


def _load_snapshot(g: Governance, d: DomainGovernance, row: Row) -> CompiledSnapshot:
    loaded = load_row(row, specs_in_force(g, d), d.scopes)
    ignored = set(map(id, loaded.ignored))
    where = f"snapshot {row['snapshot_id']} (version {row['version']})"
    for problem in loaded.problems:
        if id(problem) in ignored:
            consequence = "it names no spec of this domain, so it never applies"
        else:
            broken = next(spec_id for spec_id, found in loaded.snapshot.broken.items() if problem in found)
            consequence = f"decisions under spec {broken} are decided by its failure mode until this is fixed"
        g.warnings.append(
            GovernanceWarning(
                d.organization_id,
                d.domain,
                f"policy {problem.subject} of {where}",
                problem.code,
                f"{problem.field}: {problem.message}; {consequence}",
            )
        )
    return loaded.snapshot


def specs_in_force(g: Governance, d: DomainGovernance) -> list[Spec]:
    """One version per spec_id of the domain to check policies against (`in_force.specs_in_force`): its active
    version, else its newest."""
    of_domain = (s for s in g.specs.values() if s.organization_id == d.organization_id and s.domain == d.domain)
    return list(
        specs_in_force_of(of_domain, lambda spec: d.active_specs.get((spec.intent, spec.stage)) is spec).values()
    )


def load_row(row: Row, specs: Iterable[Spec], scopes: Iterable[Scope]) -> LoadedSnapshot:
    """A stored `policy_snapshots` row, loaded against `specs` (MANDATE.md §3a: problems contained, never raised)."""
    records = row["policies"] if isinstance(row["policies"], list) else []
    policies = []
    unreadable: list[tuple[str | None, LoadProblem]] = []
    for i, record in enumerate(records):
        try:
            policies.append(policy_from_record(record))
        except RecordError as exc:
            label = policy_label(record, i)
            unreadable.append((policy_spec_id(record), LoadProblem(label, "policy", "unreadable_policy", str(exc))))
    return load_snapshot(
        str(row["snapshot_id"]),
        int(row["version"]),
        str(row["organization_id"]),
        str(row["domain"]),
        policies,
        specs,
        scopes,
        unreadable,
    )
