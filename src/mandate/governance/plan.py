"""Planning an apply: a bundle checked against the stored governance it touches, and the rows to write — pure.

    plan(bundle, stored) -> Plan      (raises BundleError listing every problem)

`mandate.apply.apply_bundle` is the transaction around it: it reads `Stored` (db/governance.py, the objects
`wanted(bundle)` names), plans, and writes the plan's rows. Stored governance is immutable (the tables are
append-only), so a bundle that repeats what is stored plans nothing, and one that contradicts it is refused:

- organizations, domains and scopes that exist must be declared as stored;
- a stored spec version (spec_id, version) must be declared with the same content; only its status may change,
  and a change is a new spec_status_events row (a version created by an apply carries its status in its row);
- after the apply, at most one version per (organization, domain, intent, stage) is active;
- every version of a spec_id governs the same organization, domain, intent and stage;
- a snapshot version that is stored must be declared with the same policies; a snapshot without `version`
  becomes the next version of its domain, unless its policies equal the current ones (then it is a no-op);
- every snapshot written compiles (`compile_snapshot`) against the spec versions in force after the apply
  (`in_force`, as the ingestion cache loads them) and the registered scopes, and so does the current snapshot of
  every domain whose specs change.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mandate.evaluator import (
    LoadProblem,
    Policy,
    Scope,
    SnapshotError,
    Spec,
    can_tie,
    compile_snapshot,
    spec_problems,
)
from mandate.governance.bundle import (
    Bundle,
    BundleError,
    BundleProblem,
    DomainDecl,
    Located,
    OrganizationDecl,
    ScopeDecl,
    SnapshotDecl,
    SpecDecl,
    bundle_problems,
    scope_id_problems,
    unique,
)
from mandate.governance.in_force import specs_in_force
from mandate.governance.records import policies_from_records, policy_to_record, scope_from_record, spec_from_record
from mandate.vocabulary import Row, is_slug

DomainKey = tuple[str, str]  # (organization_id, domain)
SpecKey = tuple[str, str]  # (spec_id, version)
Governs = tuple[str, str, str, str]  # (organization_id, domain, intent, stage)

TABLES = ("organizations", "domains", "scopes", "mandate_specs", "spec_status_events", "policy_snapshots")
"""The tables an apply writes, in the order it writes them."""

DESCRIPTIVE = frozenset({"name", "description", "owner_contact"})
"""Fields of organizations, domains and scopes that an apply compares only when the bundle gives them."""

SNAPSHOT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:mandate:policy-snapshot")


def snapshot_id(organization_id: str, domain: str, version: int) -> uuid.UUID:
    """The id of a snapshot written by an apply: uuid5 of `organization_id/domain/version`, so it is deterministic."""
    return uuid.uuid5(SNAPSHOT_NAMESPACE, f"{organization_id}/{domain}/{version}")


# Results ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Change:
    """One row an apply writes: its `table`, the object (`spec-x@1`, `customer-support v2`) and what happens."""

    table: str
    key: str
    change: str


@dataclass(frozen=True)
class ApplyResult:
    """What an apply wrote (or, with `dry_run`, would have written): one `Change` per row."""

    changes: tuple[Change, ...]
    dry_run: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def nothing_to_apply(self) -> bool:
        return not self.changes

    @property
    def counts(self) -> dict[str, int]:
        """Rows per table (every table an apply writes, zeros included)."""
        return {table: sum(1 for c in self.changes if c.table == table) for table in TABLES}

    @property
    def rows_written(self) -> int:
        return 0 if self.dry_run else len(self.changes)


@dataclass
class Plan:
    """The rows to insert, per table, and the changes they make."""

    organizations: list[Row] = field(default_factory=list)
    domains: list[Row] = field(default_factory=list)
    scopes: list[Row] = field(default_factory=list)
    specs: list[Row] = field(default_factory=list)
    status_events: list[Row] = field(default_factory=list)
    snapshots: list[Row] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # not refused, but worth a look (e.g. scopes that can tie)

    def rows(self) -> dict[str, list[Row]]:
        """The rows to insert, per table family (`db.governance.insert_governance`'s arguments)."""
        return {
            "organizations": self.organizations,
            "domains": self.domains,
            "scopes": self.scopes,
            "specs": self.specs,
            "status_events": self.status_events,
            "snapshots": self.snapshots,
        }


# What is stored ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """The stored governance a bundle touches, as rows (text ids)."""

    organizations: Mapping[str, Row] = field(default_factory=dict)  # organization_id -> row
    domains: Mapping[DomainKey, Row] = field(default_factory=dict)
    scopes: Mapping[str, Row] = field(default_factory=dict)  # scope_id -> row
    specs: Mapping[SpecKey, Row] = field(default_factory=dict)  # in creation order; current_status from events
    latest_snapshots: Mapping[DomainKey, Row] = field(default_factory=dict)  # the highest version per domain
    snapshots: Mapping[tuple[str, str, int], Row] = field(default_factory=dict)  # the versions the bundle names


@dataclass(frozen=True)
class Wanted:
    """What an apply must read: the organizations a bundle names (by id or name) and every object it names by id."""

    organization_ids: list[str]
    names: list[str]
    scope_ids: list[str]
    spec_ids: list[str]
    snapshot_versions: list[tuple[str, str, int]]  # (organization_id, domain, version) the bundle declares


def wanted(bundle: Bundle) -> Wanted:
    """The stored governance `bundle` touches, to read before planning it."""
    policies = [p for s in bundle.snapshots for p in s.item.policies]
    return Wanted(
        organization_ids=sorted(bundle.organization_ids()),
        names=sorted({o.item.name for o in bundle.organizations}),
        scope_ids=sorted({s.item.scope_id for s in bundle.scopes} | {p.scope_id for p in policies}),
        spec_ids=sorted({s.item.spec_id for s in bundle.specs} | {p.spec_id for p in policies}),
        snapshot_versions=sorted(
            {(str(s.item.organization_id), s.item.domain, s.item.version) for s in bundle.snapshots if s.item.version}
        ),
    )


def stored_from_rows(
    organizations: Iterable[Row],
    domains: Iterable[Row],
    scopes: Iterable[Row],
    specs: Iterable[Row],
    latest_snapshots: Iterable[Row],
    snapshots: Iterable[Row],
) -> Stored:
    """`Stored` from the rows `db.governance.stored_rows` reads (text ids)."""
    return Stored(
        organizations={r["organization_id"]: r for r in organizations},
        domains={(r["organization_id"], r["domain"]): r for r in domains},
        scopes={r["scope_id"]: r for r in scopes},
        specs={(r["spec_id"], r["version"]): r for r in specs},
        latest_snapshots={(r["organization_id"], r["domain"]): r for r in latest_snapshots},
        snapshots={(r["organization_id"], r["domain"], r["version"]): r for r in snapshots},
    )


# Planning -----------------------------------------------------------------------------------------------------------


def plan(bundle: Bundle, stored: Stored) -> Plan:
    """Check `bundle` against `stored` and compute the rows to write. Raises `BundleError` with every problem."""
    return _Planner(bundle, stored).run()


class _Planner:
    def __init__(self, bundle: Bundle, stored: Stored) -> None:
        self.bundle = bundle
        self.stored = stored
        self.problems: list[BundleProblem] = bundle_problems(bundle)
        self.plan = Plan()
        self.organizations = set(stored.organizations) | {str(o.item.organization_id) for o in bundle.organizations}
        self.domains: set[DomainKey] = set(stored.domains) | {
            (str(d.item.organization_id), d.item.domain) for d in bundle.domains
        }
        self.scopes: dict[str, Scope] = {scope_id: scope_from_record(row) for scope_id, row in stored.scopes.items()}
        self.final_status: dict[SpecKey, str] = {key: row["current_status"] for key, row in stored.specs.items()}
        self.new_specs: list[Spec] = []
        self.changed_domains: dict[DomainKey, Located[SpecDecl]] = {}  # domains whose specs change -> first cause
        self.in_force: dict[DomainKey, dict[str, Spec]] = {}

    def run(self) -> Plan:
        self._organizations()
        self._domains()
        self._scopes()
        self._scope_ties()
        self._specs()
        self._snapshots()
        if self.problems:
            raise BundleError(self.problems)
        self.plan.changes.sort(key=lambda change: TABLES.index(change.table))  # the order rows are written in
        return self.plan

    def problem(self, located: Located[Any], field_name: str, message: str) -> None:
        self.problems.append(BundleProblem.at(located, field_name, message))

    def change(self, table: str, key: str, change: str) -> None:
        self.plan.changes.append(Change(table, key, change))

    def immutable(self, located: Located[Any], what: str, pairs: Mapping[str, tuple[object, object]]) -> bool:
        """Report each field where the declaration differs from the stored row; True when any does.

        Descriptive fields (names, descriptions, contacts) left out of the declaration are taken as stored.
        """
        given = located.item.model_fields_set
        differing = [
            (name, stored, declared)
            for name, (stored, declared) in pairs.items()
            if stored != declared and (name in given or name not in DESCRIPTIVE)
        ]
        for name, stored, declared in differing:
            self.problem(
                located,
                name,
                f"{what} is already stored with {name} {_shown(stored)}, not {_shown(declared)}; stored governance is"
                f" immutable: declare it as stored, or declare a new one",
            )
        return bool(differing)

    def known_domain(self, located: Located[Any], organization_id: str, domain: str) -> bool:
        if organization_id not in self.organizations:
            self.problem(
                located,
                "organization_id",
                f"organization {organization_id} does not exist; declare it under organizations",
            )
            return False
        if (organization_id, domain) not in self.domains:
            self.problem(
                located,
                "domain",
                f"domain {domain!r} does not exist in organization {organization_id}; declare it under domains",
            )
            return False
        return True

    # organizations, domains, scopes ----------------------------------------------------------------------------

    def _organizations(self) -> None:
        holder_of = {row["name"]: org for org, row in self.stored.organizations.items()}
        for located in unique(self.bundle.organizations, _organization_key):
            item: OrganizationDecl = located.item
            org = str(item.organization_id)
            row = self.stored.organizations.get(org)
            if row is not None:
                self.immutable(
                    located,
                    f"organization {org}",
                    {"name": (row["name"], item.name), "description": (row["description"], item.description)},
                )
                continue
            holder = holder_of.setdefault(item.name, org)
            if holder != org:
                self.problem(
                    located,
                    "name",
                    f"the name {item.name!r} already belongs to organization {holder}; organization names are unique",
                )
                continue
            self.plan.organizations.append({"organization_id": org, "name": item.name, "description": item.description})
            self.change("organizations", org, f"created {item.name}")

    def _domains(self) -> None:
        for located in unique(self.bundle.domains, _domain_key):
            item: DomainDecl = located.item
            org = str(item.organization_id)
            row = self.stored.domains.get((org, item.domain))
            if row is not None:
                self.immutable(
                    located,
                    f"domain {item.domain}",
                    {"name": (row["name"], item.display_name), "description": (row["description"], item.description)},
                )
                continue
            if not is_slug(item.domain):
                continue  # reported by bundle_problems
            if org not in self.organizations:
                self.problem(
                    located, "organization_id", f"organization {org} does not exist; declare it under organizations"
                )
                continue
            self.plan.domains.append(
                {
                    "organization_id": org,
                    "domain": item.domain,
                    "name": item.display_name,
                    "description": item.description,
                }
            )
            self.change("domains", item.domain, f"created in organization {org}")

    def _scope_ties(self) -> None:
        """Warn about each new scope that can tie with another: a decision matching both is governed by both (§3a)."""
        new = [row["scope_id"] for row in self.plan.scopes]
        for i, scope_id in enumerate(new):
            scope = self.scopes[scope_id]
            others = [s for s in self.scopes.values() if s.scope_id not in new[: i + 1]]
            for other in sorted(others, key=lambda s: s.scope_id):
                if can_tie(scope, other):
                    self.plan.warnings.append(
                        f"scopes {scope.scope_id} and {other.scope_id} can tie (neither contains the other): a"
                        " decision matching both is governed by the policies of both, the most severe verdict winning"
                    )

    def _scopes(self) -> None:
        selected_by = {_selector_key(row): scope_id for scope_id, row in self.stored.scopes.items()}
        for located in unique(self.bundle.scopes, _scope_key):
            item: ScopeDecl = located.item
            org = str(item.organization_id)
            row = self.stored.scopes.get(item.scope_id)
            if row is not None:
                self.immutable(
                    located,
                    f"scope {item.scope_id}",
                    {
                        "organization_id": (row["organization_id"], org),
                        "domain": (row["domain"], item.domain),
                        "environment": (row["environment"], item.environment),
                        "system": (row["scope_system"], item.system),
                        "service": (row["service"], item.service),
                        "agent": (row["agent"], item.agent),
                        "tenant": (row["tenant"], item.tenant),
                        "owning_team": (row["owning_team"], item.owning_team),
                        "owner_contact": (row["owner_contact"], item.owner_contact),
                        "description": (row["description"], item.description),
                    },
                )
                continue
            if scope_id_problems(located) or not self.known_domain(located, org, item.domain):
                continue
            twin = selected_by.setdefault(item.selector_key, item.scope_id)
            if twin != item.scope_id:
                selectors = ", ".join(f"{k}={v}" for k, v in item.to_scope().selectors.items()) or "no selectors"
                self.problem(
                    located,
                    "scope_id",
                    f"scope {twin} already selects exactly {selectors} in domain {item.domain}; two scopes of a"
                    " domain cannot have the same selectors",
                )
                continue
            self.scopes[item.scope_id] = item.to_scope()
            self.plan.scopes.append(
                {
                    "scope_id": item.scope_id,
                    "organization_id": org,
                    "domain": item.domain,
                    "environment": item.environment,
                    "scope_system": item.system,
                    "service": item.service,
                    "agent": item.agent,
                    "tenant": item.tenant,
                    "owning_team": item.owning_team,
                    "owner_contact": item.owner_contact,
                    "description": item.description,
                }
            )
            self.change("scopes", item.scope_id, f"created, owner {item.owning_team}")

    # specs ---------------------------------------------------------------------------------------------------------

    def _specs(self) -> None:
        declared = unique(self.bundle.specs, _spec_key)
        governs: dict[SpecKey, Governs] = {key: _governs_row(row) for key, row in self.stored.specs.items()}
        group_of: dict[str, Governs] = {}  # spec_id -> what its versions govern (the first version's)
        for (spec_id, _), group in governs.items():
            group_of.setdefault(spec_id, group)
        for located in declared:
            item: SpecDecl = located.item
            key = (item.spec_id, item.version)
            row = self.stored.specs.get(key)
            if row is not None:
                self._stored_spec(located, row)
                continue
            org = str(item.organization_id)
            if not self.known_domain(located, org, item.domain) or spec_problems(item.to_spec()):
                continue  # spec problems were reported by bundle_problems
            group = (org, item.domain, item.intent, item.stage)
            first = group_of.setdefault(item.spec_id, group)
            if first != group:
                names = ("organization_id", "domain", "intent", "stage")
                differing = [name for name, a, b in zip(names, first, group, strict=True) if a != b]
                self.problem(
                    located,
                    differing[0],
                    f"other versions of {item.spec_id} govern {'/'.join(first)}; every version of a spec governs the"
                    " same organization, domain, intent and stage: use a new spec_id for a different one",
                )
                continue
            governs[key] = group
            self.final_status[key] = item.status
            self.new_specs.append(item.to_spec())
            self.changed_domains.setdefault((org, item.domain), located)
            self.plan.specs.append(item.to_record())
            self.change("mandate_specs", item.ref, f"created ({item.status})")
        self._replacements(declared)
        self._single_active(declared, governs)

    def _stored_spec(self, located: Located[SpecDecl], row: Row) -> None:
        item = located.item
        differing = _spec_differences(row, item)
        if differing:
            self.problem(
                located,
                differing[0],
                f"{item.ref} is already stored with a different {', '.join(differing)}; a spec version is immutable"
                " once stored: give the changed spec a new version",
            )
            return
        current = row["current_status"]
        self.final_status[(item.spec_id, item.version)] = item.status
        if current == item.status:
            return
        reason = f"mandate apply {located.file}"
        if item.replaced_by is not None and item.status == "deprecated":
            reason += f"; replaced by {item.spec_id}@{item.replaced_by}"
        self.plan.status_events.append(
            {"spec_id": item.spec_id, "version": item.version, "status": item.status, "reason": reason}
        )
        self.changed_domains.setdefault((row["organization_id"], row["domain"]), located)
        self.change("spec_status_events", item.ref, f"{current} → {item.status}")

    def _replacements(self, declared: Sequence[Located[SpecDecl]]) -> None:
        versions: dict[str, list[str]] = {}
        for spec_id, version in [*self.stored.specs, *((d.item.spec_id, d.item.version) for d in declared)]:
            versions.setdefault(spec_id, []).append(version)
        for located in declared:
            item = located.item
            replaced_by = item.replaced_by
            if replaced_by is None:
                continue
            known = [v for v in versions[item.spec_id] if v != item.version]
            if replaced_by not in known:
                self.problem(
                    located,
                    "replaced_by",
                    f"{item.spec_id} has no other version {replaced_by!r} (known: {', '.join(known) or 'none'});"
                    " replaced_by names the version of the same spec that supersedes this one",
                )

    def _single_active(self, declared: Sequence[Located[SpecDecl]], governs: Mapping[SpecKey, Governs]) -> None:
        active: dict[Governs, list[SpecKey]] = {}
        for key, status in self.final_status.items():
            if status == "active" and key in governs:
                active.setdefault(governs[key], []).append(key)
        for located in declared:
            item = located.item
            key = (item.spec_id, item.version)
            group = governs.get(key)
            if item.status != "active" or group is None or len(active.get(group, ())) < 2:
                continue
            others = [f"{spec_id}@{version}" for spec_id, version in active[group] if (spec_id, version) != key]
            self.problem(
                located,
                "status",
                f"{item.ref} and {', '.join(others)} would both be active for {'/'.join(group)}; only one version may"
                f" be active: deprecate {', '.join(others)} in this bundle (status: deprecated,"
                f" replaced_by: {item.version!r}), or declare {item.ref} as draft",
            )

    # snapshots -----------------------------------------------------------------------------------------------------

    def _snapshots(self) -> None:
        self.in_force = self._specs_in_force()
        by_domain: dict[DomainKey, list[Located[SnapshotDecl]]] = {}
        for located in self.bundle.snapshots:
            by_domain.setdefault((str(located.item.organization_id), located.item.domain), []).append(located)
        published: set[DomainKey] = set()
        for (org, domain), snapshots in by_domain.items():
            if self._domain_snapshots(org, domain, snapshots):
                published.add((org, domain))
        for (org, domain), cause in self.changed_domains.items():
            current = self.stored.latest_snapshots.get((org, domain))
            if current is None or (org, domain) in published:
                continue
            try:
                policies = policies_from_records(current["policies"])
            except (KeyError, TypeError, ValueError):
                continue  # a legacy snapshot not readable whole (the cache skips its bad policies); not made worse
            for problem in self._compile(org, domain, current["version"], policies):
                self.problem(
                    cause,
                    "status",
                    f"with this change the current snapshot v{current['version']} of {domain} would no longer load:"
                    f" {problem}; publish a new snapshot of {domain} in this bundle",
                )

    def _domain_snapshots(self, org: str, domain: str, snapshots: Sequence[Located[SnapshotDecl]]) -> bool:
        """Plan the snapshots of one domain, in bundle order; True when one is written."""
        current = self.stored.latest_snapshots.get((org, domain))
        stored_max = 0 if current is None else int(current["version"])
        planned: dict[int, tuple[Policy, ...]] = {}
        written = False
        for located in snapshots:
            if not self.known_domain(located, org, domain):
                continue
            item = located.item
            policies = item.to_policies()
            version = item.version
            if version is None:
                latest = max([stored_max, *planned])
                if latest in planned:
                    latest_policies: tuple[Policy, ...] | None = planned[latest]
                else:
                    latest_policies = None if current is None else _stored_policies(current)
                if latest > 0 and latest_policies == policies:
                    continue  # the current snapshot already says this
                version = latest + 1
            elif (org, domain, version) in self.stored.snapshots:
                stored_policies = _stored_policies(self.stored.snapshots[(org, domain, version)])
                if stored_policies != policies:
                    self.problem(
                        located,
                        "policies",
                        f"snapshot version {version} of {domain} is already stored with other policies"
                        f" ({_policy_diff(stored_policies or (), policies)}); snapshots are immutable: omit version"
                        f" (or use version {max([stored_max, *planned]) + 1}) to publish the change as a new snapshot",
                    )
                continue
            elif version in planned:
                if planned[version] != policies:
                    self.problem(
                        located,
                        "version",
                        f"snapshot version {version} of {domain} is declared twice in this bundle with different"
                        " policies; give each snapshot its own version",
                    )
                continue
            elif version <= stored_max:
                self.problem(
                    located,
                    "version",
                    f"version {version} is not above the current version {stored_max} of {domain}: the active snapshot"
                    f" is the highest version, so a new snapshot needs a higher one (or omit version)",
                )
                continue
            planned[version] = policies
            found = self._compile(org, domain, version, policies)
            for problem in found:
                self._policy_problem(located, problem)
            if found:
                continue
            sid = snapshot_id(org, domain, version)
            self.plan.snapshots.append(
                {
                    "snapshot_id": sid,
                    "version": version,
                    "organization_id": org,
                    "domain": domain,
                    "policies": [policy_to_record(p, self.scopes.get(p.scope_id)) for p in policies],
                }
            )
            self.change(
                "policy_snapshots",
                f"{domain} v{version}",
                f"created, {len(policies)} polic{'y' if len(policies) == 1 else 'ies'} ({sid})",
            )
            written = True
        return written

    def _specs_in_force(self) -> dict[DomainKey, dict[str, Spec]]:
        """Per domain and spec_id, the version policies are checked against after the apply (`in_force`, as the
        ingestion cache chooses it)."""
        by_domain: dict[DomainKey, list[Spec]] = {}
        for spec in [*_readable_specs(self.stored.specs.values()), *self.new_specs]:
            by_domain.setdefault((spec.organization_id, spec.domain), []).append(spec)

        def active(spec: Spec) -> bool:
            return self.final_status.get((spec.spec_id, spec.version)) == "active"

        return {key: specs_in_force(specs, active) for key, specs in by_domain.items()}

    def _compile(self, org: str, domain: str, version: int, policies: Sequence[Policy]) -> list[LoadProblem]:
        """Compile against the domain's specs in force, and the other domains' (so a cross-domain binding is
        reported as such rather than as an unknown spec)."""
        own = self.in_force.get((org, domain), {})
        others = {
            spec_id: spec
            for key, specs in self.in_force.items()
            if key != (org, domain)
            for spec_id, spec in specs.items()
        }
        try:
            compile_snapshot(
                str(snapshot_id(org, domain, version)),
                version,
                org,
                domain,
                policies,
                {**others, **own}.values(),
                self.scopes.values(),
            )
        except SnapshotError as exc:
            return list(exc.problems)
        return []

    def _policy_problem(self, snapshot: Located[SnapshotDecl], problem: LoadProblem) -> None:
        """Report a compile problem at the policy it is about, naming the field as the bundle wrote it."""
        located_policies = self.bundle.policies(snapshot)
        matching = [p for p in located_policies if p.item.id == problem.subject]
        if not matching:
            self.problem(snapshot, problem.field, problem.message)
            return
        policy = matching[-1] if problem.code == "duplicate_policy" else matching[0]
        field_name = problem.field
        head, _, tail = field_name.partition("].")
        if head.startswith("conditions[") and tail == "signal":
            index = int(head.removeprefix("conditions["))
            if policy.item.conditions[index].signal is None:
                field_name = f"{head}].field"
        self.problem(policy, field_name, problem.message)


# Helpers of the planner ----------------------------------------------------------------------------------------------


def _organization_key(item: OrganizationDecl) -> str:
    return str(item.organization_id)


def _domain_key(item: DomainDecl) -> DomainKey:
    return (str(item.organization_id), item.domain)


def _scope_key(item: ScopeDecl) -> str:
    return item.scope_id


def _spec_key(item: SpecDecl) -> SpecKey:
    return (item.spec_id, item.version)


def _selector_key(row: Row) -> tuple[str, str, str, str, str, str, str]:
    return (
        row["organization_id"],
        row["domain"],
        row["service"] or "",
        row["agent"] or "",
        row["scope_system"] or "",
        row["environment"] or "",
        row["tenant"] or "",
    )


def _governs_row(row: Row) -> Governs:
    return (row["organization_id"], row["domain"], row["intent"], row["stage"])


def _readable_specs(rows: Iterable[Row]) -> list[Spec]:
    specs = []
    for row in rows:
        try:
            specs.append(spec_from_record(row))
        except (KeyError, TypeError, ValueError):
            continue  # a legacy row the evaluator cannot read; the ingestion cache skips it too (with a warning)
    return specs


def _spec_differences(row: Row, item: SpecDecl) -> list[str]:
    """The fields in which a declared spec version differs from the stored one (status and replaced_by aside)."""
    differing = [
        name
        for name, stored, declared in (
            ("organization_id", row["organization_id"], str(item.organization_id)),
            ("domain", row["domain"], item.domain),
            ("intent", row["intent"], item.intent),
            ("stage", row["stage"], item.stage),
            ("allowed_verdicts", set(row["allowed_verdicts"]), {v.value for v in item.allowed_verdicts}),
        )
        if stored != declared
    ]
    declared_spec = item.to_spec()
    try:
        stored_spec = spec_from_record(row)
    except (KeyError, TypeError, ValueError):
        return [*differing, "signals", "enforcement"]
    if stored_spec.signals != declared_spec.signals:
        differing.append("signals")
    if stored_spec.enforcement != declared_spec.enforcement:
        differing.append("enforcement")
    return differing


def _stored_policies(row: Row) -> tuple[Policy, ...] | None:
    try:
        return policies_from_records(row["policies"])
    except (KeyError, TypeError, ValueError):
        return None


def _policy_diff(old: Sequence[Policy], new: Sequence[Policy]) -> str:
    before = {p.policy_id: p for p in old}
    after = {p.policy_id: p for p in new}
    parts = []
    added = [pid for pid in after if pid not in before]
    removed = [pid for pid in before if pid not in after]
    changed = [pid for pid in after if pid in before and after[pid] != before[pid]]
    if added:
        parts.append(f"added {', '.join(added)}")
    if removed:
        parts.append(f"removed {', '.join(removed)}")
    if changed:
        parts.append(f"changed {', '.join(changed)}")
    return "; ".join(parts) or "the same policies in another order"


def _shown(value: object) -> str:
    return "nothing" if value is None else repr(value)
