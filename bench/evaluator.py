"""Evaluator: µs per evaluation with 10, 100, 1,000 and 10,000 policies loaded, next to cedarpy (AWS Cedar's Python
bindings) evaluating the same policies in the same process.

The governance is one domain, as a snapshot is: specs (one per intent, four typed context signals each) and a tree
of scopes (domain-wide → environment → service → agent). Policies are spread over specs and scopes the way real
deployments have them (most bound to services and agents, some environment- and domain-wide), with one to three
conditions over the context signals and one of the four verdicts.

The same policies are written in Cedar: the spec is the action, the scope tree is the entity hierarchy
(`principal in Scope::"…"`), conditions become `when { … }` over `context`, BLOCK becomes `forbid`, the other
verdicts `permit` (the verdict of a permit read back from a table, so that Cedar's reasons give the same verdict as
Mandate's precedence). Cedar gets every advantage: the policy set and the entities are parsed once (pre-parsed
handles), and the principal is given as the resolved scope, whereas Mandate's timing includes scope resolution and
signal validation. Every decision's verdict is compared between the two engines; they must agree.

Timed per call with perf_counter_ns, the engines interleaved in short rounds so that noise on this shared machine
falls on both alike.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.stats import summary
from mandate.evaluator import (
    CompiledSnapshot,
    Condition,
    Decision,
    Enforcement,
    Policy,
    Scope,
    ScopeIndex,
    SignalDef,
    SignalType,
    Spec,
    Verdict,
    compile_snapshot,
    evaluate,
    flips,
    validate_signals,
)

ORG = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
DOMAIN = "payments"
SIZES = (10, 100, 1_000, 10_000)
QUICK_SIZES = (10, 1_000)
RISK = ("low", "medium", "high", "critical")
REGIONS = ("eu-west", "eu-central", "us-east", "us-west", "ap-south")
ENVIRONMENTS = ("production", "staging")
VERDICTS = ("ALLOW", "PAUSE", "BLOCK", "OBSERVE")
SEVERITY = {"OBSERVE": 0, "ALLOW": 1, "PAUSE": 2, "BLOCK": 3}
WHEN = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@dataclass
class Governance:
    specs: list[Spec]
    scopes: list[Scope]
    agents: list[Scope]  # the most specific scopes, where decisions come from
    parents: dict[str, str | None]
    policies: list[Policy]


def _spec(i: int) -> Spec:
    return Spec(
        spec_id=f"spec-{i:03d}",
        version="1",
        organization_id=ORG,
        domain=DOMAIN,
        intent=f"payment.action-{i:03d}",
        stage="pre_commit",
        signals=(
            SignalDef("risk_level", SignalType.ENUM, required=True, values=RISK),
            SignalDef("amount", SignalType.NUMBER, required=True),
            SignalDef("pii", SignalType.BOOLEAN),
            SignalDef("region", SignalType.STRING),
        ),
        allowed_verdicts=frozenset(Verdict),
        enforcement=Enforcement(pause_requires=("payments-review",), resolution_timeout_minutes=60),
    )


def build(policy_count: int, seed: int = 7) -> Governance:
    """Specs, a scope tree and `policy_count` policies spread over them, deterministically from `seed`."""
    rng = random.Random(seed)
    spec_count = max(2, round(policy_count**0.5 / 2))
    agent_count = max(2, policy_count // 20)
    service_count = max(1, agent_count // 5)
    specs = [_spec(i) for i in range(spec_count)]
    root = Scope(f"{DOMAIN}.all", ORG, DOMAIN, owning_team="payments-governance")
    scopes = [root]
    parents: dict[str, str | None] = {root.scope_id: None}
    envs = []
    for env in ENVIRONMENTS:
        scope = Scope(f"{DOMAIN}.{env}", ORG, DOMAIN, owning_team="platform", environment=env)
        scopes.append(scope)
        envs.append(scope)
        parents[scope.scope_id] = root.scope_id
    services = []
    for s in range(service_count):
        env = envs[s % len(envs)]
        scope = Scope(
            f"{env.scope_id}.svc-{s:03d}", ORG, DOMAIN, owning_team=f"team-{s % 17}", environment=env.environment,
            service=f"svc-{s:03d}",
        )  # fmt: skip
        scopes.append(scope)
        services.append(scope)
        parents[scope.scope_id] = env.scope_id
    agents = []
    for a in range(agent_count):
        service = services[a % len(services)]
        scope = Scope(
            f"{service.scope_id}.agent-{a:04d}", ORG, DOMAIN, owning_team=service.owning_team,
            environment=service.environment, service=service.service, agent=f"agent-{a:04d}",
        )  # fmt: skip
        scopes.append(scope)
        agents.append(scope)
        parents[scope.scope_id] = service.scope_id
    policies = []
    for p in range(policy_count):
        level = rng.random()
        if level < 0.05:
            scope = root
        elif level < 0.15:
            scope = rng.choice(envs)
        elif level < 0.45:
            scope = rng.choice(services)
        else:
            scope = rng.choice(agents)
        conditions = _conditions(rng)
        verdict = rng.choices(VERDICTS, weights=(4, 2, 2, 2))[0]
        policies.append(Policy(f"pol-{p:05d}", rng.choice(specs).spec_id, scope.scope_id, verdict, conditions))
    return Governance(specs, scopes, agents, parents, policies)


def _conditions(rng: random.Random) -> tuple[Condition, ...]:
    makers = [
        lambda: Condition("risk_level", "==", rng.choice(RISK)),
        lambda: Condition("risk_level", "in", sorted(rng.sample(RISK, 2))),
        lambda: Condition("amount", rng.choice((">", ">=", "<", "<=")), rng.choice((100, 1_000, 10_000, 50_000))),
        lambda: Condition("pii", "==", rng.random() < 0.5),
        lambda: Condition("region", "!=", rng.choice(REGIONS)),
        lambda: Condition("region", "not_in", sorted(rng.sample(REGIONS, 2))),
    ]
    return tuple(maker() for maker in rng.sample(makers, rng.randint(1, 3)))


def decisions(g: Governance, count: int, seed: int = 11) -> list[tuple[Decision, Spec, Scope]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        spec = rng.choice(g.specs)
        agent = rng.choice(g.agents)
        context = {
            "risk_level": rng.choice(RISK),
            "amount": rng.choice((50, 500, 5_000, 20_000, 100_000)),
            "pii": rng.random() < 0.3,
            "region": rng.choice(REGIONS),
        }
        attribution = {"environment": agent.environment, "service": agent.service, "agent": agent.agent}
        out.append((Decision(ORG, DOMAIN, spec.intent, spec.stage, context, attribution, WHEN), spec, agent))
    return out


# -- Mandate ---------------------------------------------------------------------------------------------------


def mandate_engine(g: Governance) -> tuple[ScopeIndex, CompiledSnapshot, float]:
    started = time.perf_counter()
    snapshot = compile_snapshot("snap-bench", 1, ORG, DOMAIN, g.policies, g.specs, g.scopes)
    index = ScopeIndex(g.scopes)
    return index, snapshot, time.perf_counter() - started


def mandate_verdict(index: ScopeIndex, snapshot: CompiledSnapshot, decision: Decision, spec: Spec) -> str:
    resolution = index.resolve(decision)
    assert resolution is not None and not validate_signals(spec, decision)
    return evaluate(decision, spec, resolution, snapshot).verdict.value


def mandate_explained(index: ScopeIndex, snapshot: CompiledSnapshot, decision: Decision, spec: Spec) -> str:
    resolution = index.resolve(decision)
    assert resolution is not None and not validate_signals(spec, decision)
    evaluation = evaluate(decision, spec, resolution, snapshot)
    evaluation.to_dict()
    return evaluation.verdict.value


def mandate_flips(index: ScopeIndex, snapshot: CompiledSnapshot, decision: Decision, spec: Spec) -> str:
    """What reading a stored explanation with its minimal flip set costs: the explanation, then `flips` on it."""
    resolution = index.resolve(decision)
    assert resolution is not None and not validate_signals(spec, decision)
    evaluation = evaluate(decision, spec, resolution, snapshot)
    flips(evaluation.to_dict(), spec.enforcement.default_verdict, spec.signals)
    return evaluation.verdict.value


# -- experiment: one generated function per candidate set ------------------------------------------------------
# The engine tests candidates one by one (`policy.holds(values)`: two or three Python calls per policy). A matcher
# generated per (spec, scope chain), reading each signal once into a local and testing every policy's conditions
# inline, gives the same matched list; measured here on the matching step alone, for the proposal in findings.md.

_ABSENT = object()


def fuse(candidates: tuple[Any, ...]) -> Any:
    """A function values -> the policies among `candidates` whose conditions all hold (same order, same result)."""
    signals = sorted({c.signal for p in candidates for c in p.conditions})
    local = {name: f"s{i}" for i, name in enumerate(signals)}
    env: dict[str, Any] = {"_A": _ABSENT}
    lines = ["def match(values):"]
    lines += [f"    {local[name]} = values.get({name!r}, _A)" for name in signals]
    lines.append("    out = []")
    for i, p in enumerate(candidates):
        env[f"p{i}"] = p
        tests = []
        for j, c in enumerate(p.conditions):
            v, e, op = local.get(c.signal, "_A"), f"e{i}_{j}", str(c.operator)
            env[e] = frozenset(c.expected) if op in ("in", "not_in") else c.expected
            tests.append(
                {
                    "exists": f"({v} is not _A) is {e}",
                    "in": f"{v} in {e}",
                    "not_in": f"({v} is not _A and {v} not in {e})",
                    "==": f"{v} == {e}",
                }.get(op, f"({v} is not _A and {v} {op} {e})")
            )
        lines.append(f"    if {' and '.join(tests) or 'True'}: out.append(p{i})")
    lines.append("    return out")
    exec(compile("\n".join(lines), "<fused>", "exec"), env)  # generated from checked policies only
    return env["match"]


def match_experiment(g: Governance, index: ScopeIndex, snapshot: CompiledSnapshot, seconds: float) -> dict[str, Any]:
    from mandate.evaluator import read_signals

    cases = []
    fused: dict[tuple[str, tuple[str, ...]], Any] = {}
    for d, s, _ in decisions(g, 500):
        resolution = index.resolve(d)
        assert resolution is not None
        candidates = snapshot.candidates(s.spec_id, resolution.scope_ids)
        key = (s.spec_id, resolution.scope_ids)
        if key not in fused:
            fused[key] = fuse(candidates)
        values = read_signals(s, d)[0]
        assert fused[key](values) == [p for p in candidates if p.holds(values)]  # same matches, same order
        cases.append((candidates, fused[key], values))

    def per_policy(candidates: Any, _fused: Any, values: Any) -> Any:
        return [p for p in candidates if p.holds(values)]

    def generated(_candidates: Any, fn: Any, values: Any) -> Any:
        return fn(values)

    samples: dict[str, list[float]] = {"per-policy (engine today)": [], "generated matcher": []}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        _time(per_policy, cases, samples["per-policy (engine today)"])
        _time(generated, cases, samples["generated matcher"])
    return {name: {k: round(v, 2) for k, v in summary(x).items()} for name, x in samples.items()}


# -- Cedar -----------------------------------------------------------------------------------------------------


def _cedar_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_cedar_value(v) for v in value) + "]"
    return str(value)


def _cedar_condition(c: Condition) -> str:
    attr = f"context.{c.signal}"
    if c.operator == "in":
        return f"{_cedar_value(c.value)}.contains({attr})"
    if c.operator == "not_in":
        return f"!{_cedar_value(c.value)}.contains({attr})"
    if c.operator == "exists":
        return f"context has {c.signal}" if c.value else f"!(context has {c.signal})"
    return f"{attr} {c.operator} {_cedar_value(c.value)}"


def cedar_text(g: Governance) -> tuple[str, list[str]]:
    """The policies in Cedar, and the Mandate verdict of each (Cedar names them policy0, policy1, … in order)."""
    texts, verdicts = [], []
    for p in g.policies:
        effect = "forbid" if p.verdict == "BLOCK" else "permit"
        when = " && ".join(_cedar_condition(c) for c in p.conditions)
        texts.append(
            f'{effect} (principal in Scope::"{p.scope_id}", action == Action::"{p.spec_id}", resource)\n'
            f"when {{ {when} }};"
        )
        verdicts.append(p.verdict)
    return "\n".join(texts), verdicts


def cedar_entities(g: Governance) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = [
        {
            "uid": {"type": "Scope", "id": scope_id},
            "attrs": {},
            "parents": [] if parent is None else [{"type": "Scope", "id": parent}],
        }
        for scope_id, parent in g.parents.items()
    ]
    entities.append({"uid": {"type": "Target", "id": "t"}, "attrs": {}, "parents": []})
    entities.extend({"uid": {"type": "Action", "id": s.spec_id}, "attrs": {}, "parents": []} for s in g.specs)
    return entities


class CedarEngine:
    def __init__(self, g: Governance) -> None:
        import json

        import cedarpy

        self.cedarpy = cedarpy
        started = time.perf_counter()
        text, self.verdicts = cedar_text(g)
        self.policies = cedarpy.PolicySet.from_str(text)
        self.entities = cedarpy.Entities.from_json_str(json.dumps(cedar_entities(g)))
        self.load_s = time.perf_counter() - started
        self.index = {f"policy{i}": v for i, v in enumerate(self.verdicts)}

    def verdict(self, decision: Decision, spec: Spec, scope: Scope) -> str:
        result = self.cedarpy.is_authorized(
            {
                "principal": f'Scope::"{scope.scope_id}"',
                "action": f'Action::"{spec.spec_id}"',
                "resource": 'Target::"t"',
                "context": decision.context,
            },
            self.policies,
            self.entities,
        )
        reasons = result.diagnostics.reasons
        if not reasons:
            return "OBSERVE"  # nothing matched: the spec's default
        if result.decision is self.cedarpy.Decision.Deny:
            return "BLOCK"
        index = self.index
        return max((index[r] for r in reasons), key=SEVERITY.__getitem__)


# -- the run ---------------------------------------------------------------------------------------------------


def _time(fn: Any, args: list[tuple[Any, ...]], samples: list[float]) -> None:
    clock = time.perf_counter_ns
    for a in args:
        t0 = clock()
        fn(*a)
        samples.append((clock() - t0) / 1000)


def run_size(policy_count: int, seconds: float, has_cedar: bool) -> dict[str, Any]:
    g = build(policy_count)
    index, snapshot, mandate_load_s = mandate_engine(g)
    sample = decisions(g, 500)
    result: dict[str, Any] = {
        "policies": policy_count,
        "specs": len(g.specs),
        "scopes": len(g.scopes),
        "mandate_load_ms": round(mandate_load_s * 1000, 2),
    }
    candidates = [len(snapshot.candidates(s.spec_id, index.resolve(d).scope_ids)) for d, s, _ in sample]  # type: ignore[union-attr]
    result["mean_candidates"] = round(sum(candidates) / len(candidates), 2)
    engines: dict[str, tuple[Any, list[tuple[Any, ...]]]] = {
        "mandate": (mandate_verdict, [(index, snapshot, d, s) for d, s, _ in sample]),
        "mandate+explanation": (mandate_explained, [(index, snapshot, d, s) for d, s, _ in sample]),
        "mandate+explanation+flips": (mandate_flips, [(index, snapshot, d, s) for d, s, _ in sample]),
    }
    if has_cedar:
        cedar = CedarEngine(g)
        result["cedar_load_ms"] = round(cedar.load_s * 1000, 2)
        engines["cedarpy"] = (cedar.verdict, [(d, s, a) for d, s, a in sample])
        ours = [mandate_verdict(index, snapshot, d, s) for d, s, _ in sample]
        theirs = [cedar.verdict(d, s, a) for d, s, a in sample]
        result["verdicts_agree"] = sum(x == y for x, y in zip(ours, theirs, strict=True))
        result["verdicts_compared"] = len(sample)
        result["verdict_mix"] = {v: ours.count(v) for v in VERDICTS}
    samples: dict[str, list[float]] = {name: [] for name in engines}
    # Warm up: every decision once through Mandate (its memos — scope resolution, candidate sets — are then in the
    # state a running server's are), a few through Cedar (no memo). Then alternate the engines in time slices of
    # 0.5 s until the time is up: noise that drifts over seconds falls on all of them alike, while each engine runs
    # back to back within its slice, as a server would (interleaving single calls would let Cedar's scans of
    # 10,000 policies evict Mandate's working set from the CPU caches before every call).
    for name, (fn, args) in engines.items():
        for a in args if name.startswith("mandate") else args[:20]:
            fn(*a)
    position = dict.fromkeys(engines, 0)
    slice_s = min(0.5, seconds / 4)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for name, (fn, args) in engines.items():
            end = time.perf_counter() + slice_s
            while time.perf_counter() < end:
                start = position[name]
                _time(fn, [args[(start + k) % len(args)] for k in range(10)], samples[name])
                position[name] = start + 10
    result["engines"] = {name: {k: round(v, 2) for k, v in summary(s).items()} for name, s in samples.items()}
    if has_cedar:
        ours_p50 = result["engines"]["mandate"]["p50"]
        result["cedar_over_mandate_p50"] = round(result["engines"]["cedarpy"]["p50"] / ours_p50, 2)
    result["matching_step"] = match_experiment(g, index, snapshot, seconds / 3)
    return result


def run(quick: bool) -> dict[str, Any]:
    try:
        import cedarpy  # noqa: F401
    except ImportError:
        has_cedar = False
    else:
        has_cedar = True
    sizes = QUICK_SIZES if quick else SIZES
    seconds = 0.3 if quick else 6.0
    rows = []
    for size in sizes:
        row = run_size(size, seconds, has_cedar)
        e = row["engines"]
        line = f"  {size:>6} policies: mandate p50 {e['mandate']['p50']:.1f} µs"
        if has_cedar:
            line += f", cedarpy p50 {e['cedarpy']['p50']:.1f} µs, verdicts agree {row['verdicts_agree']}/500"
        print(line, flush=True)
        rows.append(row)
    return {"quick": quick, "seconds_per_size": seconds, "cedarpy": has_cedar, "sizes": rows}
