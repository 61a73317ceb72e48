"""Governance bundles: organizations, domains, scopes, specs and policy snapshots declared in YAML or JSON files.

A bundle file is a mapping with up to five sections (docs/bundles.md has the format and a complete example):

    organizations:  [{organization_id, name, description?}]
    domains:        [{organization_id, domain, name?, description?}]
    scopes:         [{scope_id, organization_id, domain, environment?, system?, service?, agent?, tenant?,
                      owning_team, owner_contact?, description?}]
    specs:          [{spec_id, version, organization_id, domain, intent, stage, signals, allowed_verdicts,
                      enforcement?, status, replaced_by?}]
    snapshots:      [{organization_id, domain, version?, policies: [{id, name?, description?, spec_id, scope_id,
                      conditions: [{signal (or field), operator, value}], verdict}]}]

Parsing is strict: unknown fields are refused (a misspelt `owning_tem` must not vanish silently), duplicate keys
are refused, and YAML 1.1's surprises are switched off (only `true`/`false` are booleans; dates stay strings).
Every declaration keeps where it was written, so each problem names the file, the object and the field:

    team.yaml: snapshots[1].policies[3] (pol-x): conditions[0].signal: 'amout' is not a signal of spec …

This module checks what a bundle says about itself (`bundle_problems`); `governance.plan` checks it
against what the database already holds, and `mandate.apply` writes it.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, get_args, get_origin
from uuid import UUID

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from mandate.errors import GovernanceError
from mandate.evaluator import (
    Condition,
    Policy,
    Scope,
    SignalSource,
    SignalType,
    Spec,
    Verdict,
    spec_problems,
)
from mandate.governance.records import enforcement_to_record, scope_from_record, signal_to_record, spec_from_record
from mandate.vocabulary import Stage, is_scope_id, is_slug

"""A domain: lower-case letters, digits, `_` and `-` (the database's CHECK)."""
"""A scope id: dot-separated slugs (the database's CHECK); the first one must be the scope's domain."""
SECTIONS = ("organizations", "domains", "scopes", "specs", "snapshots")
DEMO_FILE = "demo.yaml"


def has_domain_prefix(scope_id: str, domain: str) -> bool:
    """`left(scope_id, length(domain) + 1) = domain || '.'`, as the database checks it (never a LIKE)."""
    return scope_id[: len(domain) + 1] == domain + "."


# Declarations ------------------------------------------------------------------------------------------------------

Text = Annotated[str, Field(min_length=1)]


class Declaration(BaseModel):
    """Base of every declaration: immutable, and unknown fields are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OrganizationDecl(Declaration):
    organization_id: UUID
    name: Text
    description: str | None = None


class DomainDecl(Declaration):
    organization_id: UUID
    domain: Text
    name: Text | None = None  # the display name; the slug when omitted
    description: str | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.domain


class ScopeDecl(Declaration):
    scope_id: Text
    organization_id: UUID
    domain: Text
    environment: Text | None = None
    system: Text | None = None
    service: Text | None = None
    agent: Text | None = None
    tenant: Text | None = None
    owning_team: Text
    owner_contact: str | None = None
    description: str | None = None

    def to_scope(self) -> Scope:
        return scope_from_record(self.model_dump(mode="json"))

    @property
    def selector_key(self) -> tuple[str, str, str, str, str, str, str]:
        """What the database's unique index over selectors compares (NULL counts as '')."""
        return (
            str(self.organization_id),
            self.domain,
            self.service or "",
            self.agent or "",
            self.system or "",
            self.environment or "",
            self.tenant or "",
        )


class SignalDecl(Declaration):
    name: Text
    type: SignalType
    required: StrictBool = False
    source: SignalSource = SignalSource.CONTEXT
    values: tuple[Text, ...] = ()


class EnforcementDecl(Declaration):
    pause_requires: tuple[Text, ...] = ()
    resolution_timeout_minutes: StrictInt | None = None
    default_verdict: Verdict = Verdict.OBSERVE
    failure_mode: Verdict = Verdict.OBSERVE


SpecStatus = Literal["draft", "active", "deprecated"]


class SpecDecl(Declaration):
    spec_id: Text
    version: Text
    organization_id: UUID
    domain: Text
    intent: Text
    stage: Stage
    signals: tuple[SignalDecl, ...] = ()
    allowed_verdicts: tuple[Verdict, ...]
    enforcement: EnforcementDecl = EnforcementDecl()
    status: SpecStatus
    replaced_by: Text | None = None

    @field_validator("version", "replaced_by", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        """`version: 1` means "1"; `version: 1.10` is refused (YAML reads it as the number 1.1)."""
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, float):
            raise ValueError(f"quote the version: YAML reads it as the number {value}, so write '\"{value}\"'")
        return value

    @property
    def ref(self) -> str:
        return f"{self.spec_id}@{self.version}"

    def to_record(self) -> dict[str, Any]:
        """The stored shapes (records.py) of signals and enforcement, allowed verdicts deduplicated in order."""
        spec = self.to_spec()
        return {
            "spec_id": self.spec_id,
            "version": self.version,
            "organization_id": str(self.organization_id),
            "domain": self.domain,
            "intent": self.intent,
            "stage": self.stage,
            "allowed_verdicts": [v.value for v in dict.fromkeys(self.allowed_verdicts)],
            "signals": [signal_to_record(signal) for signal in spec.signals],
            "enforcement": enforcement_to_record(spec.enforcement),
            "status": self.status,
            "replaced_by": self.replaced_by,
        }

    def to_spec(self) -> Spec:
        return spec_from_record(self.model_dump(mode="json"))


class ConditionDecl(Declaration):
    signal: Text | None = None
    field: Text | None = None  # the original project's name for `signal`
    operator: Text
    value: Any = None

    @model_validator(mode="after")
    def _one_signal(self) -> ConditionDecl:
        if (self.signal is None) == (self.field is None):
            raise ValueError("name the condition's signal with `signal:` (or `field:`), exactly one of them")
        return self

    @property
    def signal_name(self) -> str:
        name = self.signal if self.signal is not None else self.field
        assert name is not None  # checked by _one_signal
        return name


class PolicyDecl(Declaration):
    id: Text
    name: str | None = None
    description: str | None = None
    spec_id: Text
    scope_id: Text
    conditions: tuple[ConditionDecl, ...] = ()
    verdict: Text

    def to_policy(self) -> Policy:
        return Policy(
            policy_id=self.id,
            spec_id=self.spec_id,
            scope_id=self.scope_id,
            verdict=self.verdict,
            conditions=tuple(Condition(c.signal_name, c.operator, c.value) for c in self.conditions),
            name=self.name,
            description=self.description,
        )


class SnapshotDecl(Declaration):
    organization_id: UUID
    domain: Text
    version: Annotated[StrictInt, Field(gt=0)] | None = None  # omitted: the next version, if the policies changed
    policies: tuple[PolicyDecl, ...]

    def to_policies(self) -> tuple[Policy, ...]:
        return tuple(policy.to_policy() for policy in self.policies)


class BundleFile(Declaration):
    """One file of a bundle, as written."""

    organizations: tuple[OrganizationDecl, ...] = ()
    domains: tuple[DomainDecl, ...] = ()
    scopes: tuple[ScopeDecl, ...] = ()
    specs: tuple[SpecDecl, ...] = ()
    snapshots: tuple[SnapshotDecl, ...] = ()


# Where things were written, and what is wrong with them -----------------------------------------------------------

D = TypeVar("D", bound=Declaration)


@dataclass(frozen=True, slots=True)
class Located(Generic[D]):
    """A declaration and where it was written: `file`, `path` (`specs[2]`) and a `label` naming it (`spec-x@1`)."""

    item: D
    file: str
    path: str
    label: str

    @property
    def subject(self) -> str:
        return f"{self.path} ({self.label})" if self.label else self.path

    @property
    def where(self) -> str:
        return f"{self.file}: {self.subject}"


@dataclass(frozen=True, slots=True)
class BundleProblem:
    """One thing wrong with a bundle: the `file`, the `subject` (`snapshots[1].policies[3] (pol-x)`), the `field`
    inside it (`conditions[0].signal`) and a `message` that says what is wrong and what to do."""

    file: str
    subject: str
    field: str
    message: str

    def __str__(self) -> str:
        return ": ".join([part for part in (self.file, self.subject, self.field) if part] + [self.message])

    @classmethod
    def at(cls, located: Located[Any], field: str, message: str) -> BundleProblem:
        return cls(located.file, located.subject, field, message)


class BundleError(GovernanceError):
    """A bundle was refused; `problems` lists every problem found. Nothing was written."""

    def __init__(self, problems: Iterable[BundleProblem]) -> None:
        self.problems: tuple[BundleProblem, ...] = tuple(problems)
        count = len(self.problems)
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(
            f"governance bundle refused, {count} problem{'' if count == 1 else 's'} (nothing was written):\n{lines}"
        )


# The bundle --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bundle:
    """The declarations of one or more files, in file order, each with where it was written."""

    organizations: tuple[Located[OrganizationDecl], ...] = ()
    domains: tuple[Located[DomainDecl], ...] = ()
    scopes: tuple[Located[ScopeDecl], ...] = ()
    specs: tuple[Located[SpecDecl], ...] = ()
    snapshots: tuple[Located[SnapshotDecl], ...] = ()
    files: tuple[str, ...] = ()

    def __add__(self, other: Bundle) -> Bundle:
        return Bundle(
            self.organizations + other.organizations,
            self.domains + other.domains,
            self.scopes + other.scopes,
            self.specs + other.specs,
            self.snapshots + other.snapshots,
            self.files + other.files,
        )

    @classmethod
    def of(cls, parsed: BundleFile, file: str) -> Bundle:
        """Locate the declarations of one parsed file."""

        def locate(section: str, items: Sequence[D], label: Callable[[D], str]) -> tuple[Located[D], ...]:
            return tuple(Located(item, file, f"{section}[{i}]", label(item)) for i, item in enumerate(items))

        return cls(
            locate("organizations", parsed.organizations, lambda o: str(o.organization_id)),
            locate("domains", parsed.domains, lambda d: d.domain),
            locate("scopes", parsed.scopes, lambda s: s.scope_id),
            locate("specs", parsed.specs, lambda s: s.ref),
            locate("snapshots", parsed.snapshots, _snapshot_label),
            (file,),
        )

    def organization_ids(self) -> set[str]:
        """Every organization the bundle declares or refers to."""
        ids = {str(o.item.organization_id) for o in self.organizations}
        ids.update(str(d.item.organization_id) for d in self.domains)
        ids.update(str(s.item.organization_id) for s in self.scopes)
        ids.update(str(s.item.organization_id) for s in self.specs)
        ids.update(str(s.item.organization_id) for s in self.snapshots)
        return ids

    def policies(self, snapshot: Located[SnapshotDecl]) -> list[Located[PolicyDecl]]:
        """The policies of a snapshot, located (`snapshots[1].policies[3]`, labelled by policy id)."""
        return [
            Located(policy, snapshot.file, f"{snapshot.path}.policies[{i}]", policy.id)
            for i, policy in enumerate(snapshot.item.policies)
        ]


def _snapshot_label(snapshot: SnapshotDecl) -> str:
    return snapshot.domain if snapshot.version is None else f"{snapshot.domain} v{snapshot.version}"


def bundle_problems(bundle: Bundle) -> list[BundleProblem]:
    """What is wrong with the bundle by itself: malformed identifiers, self-contradicting specs, and one object
    declared twice with different content. References and immutability are checked against the database by
    `mandate.governance.apply`."""
    problems: list[BundleProblem] = []
    for domain in bundle.domains:
        slug = domain.item.domain
        if not is_slug(slug):
            problems.append(
                BundleProblem.at(
                    domain,
                    "domain",
                    f"{slug!r} is not a slug: use lower-case letters, digits, '_' and '-' only (e.g. customer-support)",
                )
            )
    for scope in bundle.scopes:
        problems.extend(scope_id_problems(scope))
    for spec in bundle.specs:
        for problem in spec_problems(spec.item.to_spec()):
            problems.append(BundleProblem.at(spec, problem.field, problem.message))
    problems.extend(_duplicates(bundle.organizations, lambda o: str(o.organization_id), "organization"))
    problems.extend(_duplicates(bundle.domains, lambda d: (str(d.organization_id), d.domain), "domain"))
    problems.extend(_duplicates(bundle.scopes, lambda s: s.scope_id, "scope"))
    problems.extend(_duplicates(bundle.specs, lambda s: (s.spec_id, s.version), "spec version"))
    return problems


def scope_id_problems(scope: Located[ScopeDecl]) -> list[BundleProblem]:
    scope_id, domain = scope.item.scope_id, scope.item.domain
    if not is_scope_id(scope_id):
        return [
            BundleProblem.at(
                scope,
                "scope_id",
                f"{scope_id!r} is not a scope id: dot-separated slugs starting with the domain,"
                f" e.g. {domain}.prod.billing",
            )
        ]
    if not has_domain_prefix(scope_id, domain):
        return [
            BundleProblem.at(
                scope,
                "scope_id",
                f"scope id {scope_id!r} must start with its domain prefix '{domain}.'"
                f" (e.g. {domain}.{scope_id.split('.', 1)[1]}), or belong to the domain it names",
            )
        ]
    return []


def _duplicates(group: Sequence[Located[D]], key: Callable[[D], Hashable], kind: str) -> Iterable[BundleProblem]:
    """Declaring one object twice is allowed when both declarations say the same; otherwise it is an error."""
    first: dict[Hashable, Located[D]] = {}
    for located in group:
        earlier = first.setdefault(key(located.item), located)
        if earlier is not located and earlier.item != located.item:
            fields = [
                name
                for name in type(located.item).model_fields
                if getattr(earlier.item, name) != getattr(located.item, name)
            ]
            yield BundleProblem.at(
                located,
                fields[0],
                f"this {kind} is also declared at {earlier.where} with a different {', '.join(fields)};"
                " declare it once",
            )


def unique(group: Sequence[Located[D]], key: Callable[[D], Hashable]) -> list[Located[D]]:
    """The first declaration of each object (identical repeats are dropped; different ones are a problem)."""
    seen: dict[Hashable, Located[D]] = {}
    for located in group:
        seen.setdefault(key(located.item), located)
    return list(seen.values())


# Parsing -----------------------------------------------------------------------------------------------------------


def load_bundle(paths: Iterable[str | Path]) -> Bundle:
    """Read and parse bundle files (`.json` as JSON, anything else as YAML) into one bundle.

    Raises `BundleError` listing the problems of every file (missing, unreadable, malformed, unknown fields…).
    """
    bundle = Bundle()
    problems: list[BundleProblem] = []
    for path in map(Path, paths):
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            problems.append(BundleProblem(name, "", "", "no such file"))
            continue
        except UnicodeDecodeError as exc:
            problems.append(BundleProblem(name, "", "", f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
            continue
        except OSError as exc:
            problems.append(BundleProblem(name, "", "", f"cannot read the file: {exc.strerror or exc}"))
            continue
        try:
            bundle += parse_bundle(text, name, json_syntax=path.suffix.lower() == ".json")
        except BundleError as exc:
            problems.extend(exc.problems)
    if problems:
        raise BundleError(problems)
    return bundle


def load_demo_bundle() -> Bundle:
    """The demo governance shipped with the package (DEMO-GOVERNANCE.md), as `mandate apply --demo` applies it."""
    text = resources.files("mandate.governance").joinpath(DEMO_FILE).read_text(encoding="utf-8")
    return parse_bundle(text, DEMO_FILE)


def parse_bundle(text: str, file: str = "<bundle>", *, json_syntax: bool = False) -> Bundle:
    """Parse one bundle file's text; `file` is the name problems give. Raises `BundleError`."""
    data = _load_json(text, file) if json_syntax else _load_yaml(text, file)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else _kind(data)
        raise BundleError(
            [
                BundleProblem(
                    file,
                    "(top level)",
                    "",
                    f"a bundle is a mapping with the sections {', '.join(SECTIONS)}; got {got}",
                )
            ]
        )
    try:
        parsed = BundleFile.model_validate(data)
    except ValidationError as exc:
        raise BundleError(_validation_problems(exc, data, file)) from None
    return Bundle.of(parsed, file)


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def _load_yaml(text: str, file: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # _StrictLoader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        raise BundleError([BundleProblem(file, where, "", f"malformed YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise BundleError([BundleProblem(file, "", "", f"malformed YAML: {exc}")]) from None


def _load_json(text: str, file: str) -> Any:
    def refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        mapping: dict[str, Any] = {}
        for key, value in pairs:
            if key in mapping:
                raise _DuplicateKey(key)
            mapping[key] = value
        return mapping

    try:
        return json.loads(text, object_pairs_hook=refuse_duplicates)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise BundleError([BundleProblem(file, where, "", f"malformed JSON: {exc.msg}")]) from None
    except _DuplicateKey as exc:
        raise BundleError(
            [BundleProblem(file, "", "", f"malformed JSON: the key {exc.key!r} is given twice")]
        ) from None


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


_BOOL = "tag:yaml.org,2002:bool"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader without YAML 1.1's surprises: only true/false are booleans (`no`, `on` stay strings), dates stay
    strings, and a key given twice in one mapping is an error instead of the last one silently winning."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable):
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark, f"found the key {key!r} twice", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL, _TIMESTAMP)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _validation_problems(exc: ValidationError, data: Mapping[str, Any], file: str) -> list[BundleProblem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        subject, rest = _subject(loc, data)
        field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in rest).lstrip(".")
        kind = error["type"]
        if kind == "extra_forbidden":
            allowed = _allowed_fields(loc[:-1])
            if len(loc) == 1:
                message = f"unknown section {loc[0]!r}; a bundle has {', '.join(SECTIONS)}"
            else:
                message = f"unknown field {loc[-1]!r}; check the spelling (allowed: {', '.join(allowed)})"
        elif kind == "missing":
            message = "required field is missing"
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            if kind != "value_error":
                message += f" (got {_shown(error.get('input'))})"
        problems.append(BundleProblem(file, subject, field, message))
    return problems


def _subject(loc: tuple[int | str, ...], data: Mapping[str, Any]) -> tuple[str, tuple[int | str, ...]]:
    """Split an error location into the object (`specs[2] (spec-x@1)`) and the path inside it."""
    if len(loc) < 2 or not isinstance(loc[1], int):
        return "(top level)", loc
    section, index = str(loc[0]), loc[1]
    path = f"{section}[{index}]"
    raw = _item(data.get(section), index)
    rest = loc[2:]
    label = _raw_label(section, raw)
    if section == "snapshots" and len(rest) >= 2 and rest[0] == "policies" and isinstance(rest[1], int):
        path += f".policies[{rest[1]}]"
        policy = _item(raw.get("policies") if isinstance(raw, dict) else None, rest[1])
        label = _text(policy.get("id")) if isinstance(policy, dict) else ""
        rest = rest[2:]
    return (f"{path} ({label})" if label else path), rest


def _item(items: object, index: int) -> object:
    if isinstance(items, list) and 0 <= index < len(items):
        return items[index]
    return None


def _text(value: object) -> str:
    return "" if value is None or isinstance(value, dict | list) else str(value)


def _raw_label(section: str, raw: object) -> str:
    if not isinstance(raw, dict):
        return ""
    if section == "specs":
        spec_id, version = _text(raw.get("spec_id")), _text(raw.get("version"))
        return f"{spec_id}@{version}" if spec_id and version else spec_id
    if section == "snapshots":
        domain, version = _text(raw.get("domain")), _text(raw.get("version"))
        return f"{domain} v{version}" if domain and version else domain
    key = {"organizations": "organization_id", "domains": "domain", "scopes": "scope_id"}.get(section, "")
    return _text(raw.get(key)) if key else ""


def _shown(value: object) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_fields(loc: tuple[int | str, ...]) -> list[str]:
    """The field names of the model at `loc` (for "unknown field" messages)."""
    model: type[BaseModel] = BundleFile
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        found = _model_in(info.annotation) if info is not None else None
        if found is None:
            return []
        model = found
    return list(model.model_fields)


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (tuple, list, Union, types.UnionType, Annotated):
        for arg in get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
