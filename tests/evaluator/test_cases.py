"""The evaluator's behaviour, specified by data: one YAML file per behaviour under `cases/`.

Each case is run the way the ingestion path runs a decision (MANDATE.md §3): specs are checked, the snapshots are
loaded against the active specs, the active spec and snapshot (highest version) are picked, the signals are
validated, the scope is resolved, and the decision is evaluated. The first step the case expects to fail is where
it stops. The format is described in `cases/README.md`.
"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from mandate.evaluator import (
    CompiledSnapshot,
    Evaluation,
    GapCode,
    LoadProblem,
    Scope,
    ScopeIndex,
    SnapshotError,
    Spec,
    SpecError,
    check_spec,
    compile_snapshot,
    evaluate,
    flips,
    governance_gap,
    load_snapshot,
    validate_signals,
)

from . import builders

CASES = sorted((Path(__file__).parent / "cases").glob("*.yaml"))
CASE_KEYS = {
    "description",
    "organization_id",
    "domain",
    "specs",
    "scopes",
    "snapshots",
    "request",
    "harness",
    "expected",
}
EXPECTED_KEYS = {
    "verdict", "reason", "summary", "winner", "matched", "tied_policies", "candidates", "spec", "snapshot", "scope",
    "owning_team", "ancestors", "tied_scopes", "pause", "errors", "gap", "conditions", "policy_errors",
    "error_messages", "validation_problems", "snapshot_error", "spec_error", "authority", "ignored", "flips",
}  # fmt: skip
HARNESS_KEYS = {"check_specs", "validate_signals", "stored"}


def load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = yaml.safe_load(path.read_text())
    unknown = set(case) - CASE_KEYS
    assert not unknown, f"unknown top-level keys {unknown}"
    assert case.get("description"), "every case says what behaviour it specifies"
    assert not set(case["expected"]) - EXPECTED_KEYS, f"unknown expected keys {set(case['expected']) - EXPECTED_KEYS}"
    assert not set(case.get("harness") or {}) - HARNESS_KEYS, "unknown harness keys"
    return case


@pytest.mark.parametrize("path", CASES, ids=[path.stem for path in CASES])
def test_case(path: Path) -> None:
    case = load(path)
    expected = case["expected"]
    org = case.get("organization_id", builders.ORG)
    domain = case.get("domain", builders.DOMAIN)
    harness = case.get("harness") or {}

    spec_data = case.get("specs") or []
    specs = [builders.spec(s, org, domain) for s in spec_data]
    if harness.get("check_specs", True):
        problems: list[LoadProblem] = []
        for s in specs:
            try:
                check_spec(s)
            except SpecError as error:
                problems.extend(error.problems)
        if "spec_error" in expected:
            assert_problems(problems, expected["spec_error"])
            return
        assert not problems, "\n".join(map(str, problems))
    active = [s for s, data in zip(specs, spec_data, strict=True) if data.get("status", "active") == "active"]

    scopes = [builders.scope(s, org, domain) for s in case.get("scopes") or []]
    stop, snapshot = load_snapshots(case, org, domain, active, scopes, expected)
    if stop:
        return

    decision = builders.decision(case["request"], org, domain)
    spec = next(
        (
            s
            for s in active
            if (s.organization_id, s.domain, s.intent, s.stage)
            == (decision.organization_id, decision.domain, decision.intent, decision.stage)
        ),
        None,
    )
    if spec is None:
        check(governance_gap(decision, GapCode.NO_ACTIVE_SPEC), expected, None)
        return

    signal_problems = validate_signals(spec, decision)
    if "validation_problems" in expected:
        assert [{"signal": p.signal, "code": p.code} for p in signal_problems] == expected["validation_problems"]
        assert all(p.message for p in signal_problems)
        return
    if harness.get("validate_signals", True):
        assert not signal_problems, signal_problems

    resolution = ScopeIndex(scopes).resolve(decision)
    if resolution is None:
        check(governance_gap(decision, GapCode.NO_SCOPE, spec=spec), expected, spec)
        return
    evaluation = evaluate(decision, spec, resolution, snapshot)
    check(evaluation, expected, spec)
    again = evaluate(decision, spec, resolution, snapshot)
    assert dump(again) == dump(evaluation), "same inputs, same explanation, byte for byte"


def load_snapshots(
    case: Mapping[str, Any],
    org: str,
    domain: str,
    specs: list[Spec],
    scopes: list[Scope],
    expected: Mapping[str, Any],
) -> tuple[bool, CompiledSnapshot | None]:
    """Load every snapshot of the case → (stop here, the active snapshot: the highest version, never the latest
    created; None for `snapshots: []`, a domain without any). With `harness: {stored: true}` snapshots are loaded as
    the server loads stored governance (`load_snapshot`: problems contained per spec, `ignored` compared)."""
    snapshots = case.get("snapshots", [{"snapshot_id": "snapshot-empty", "version": 1, "policies": []}])
    problems: list[LoadProblem] = []
    loaded = []
    if (case.get("harness") or {}).get("stored"):
        ignored: list[LoadProblem] = []
        for data in snapshots:
            result = load_snapshot(
                data["snapshot_id"],
                data["version"],
                data.get("organization_id", org),
                data.get("domain", domain),
                [builders.policy(p) for p in data.get("policies") or []],
                specs,
                scopes,
            )
            ignored.extend(result.ignored)
            loaded.append(result.snapshot)
        assert_problems(ignored, expected.get("ignored") or [])
        return False, max(loaded, key=lambda s: s.version, default=None)
    for data in snapshots:
        try:
            loaded.append(
                compile_snapshot(
                    data["snapshot_id"],
                    data["version"],
                    data.get("organization_id", org),
                    data.get("domain", domain),
                    [builders.policy(p) for p in data.get("policies") or []],
                    specs,
                    scopes,
                )
            )
        except SnapshotError as error:
            problems.extend(error.problems)
    if "snapshot_error" in expected:
        assert_problems(problems, expected["snapshot_error"])
        return True, None
    assert not problems, "\n".join(map(str, problems))
    return False, max(loaded, key=lambda s: s.version, default=None)


def assert_problems(problems: list[Any], expected: list[Mapping[str, Any]]) -> None:
    """Every problem is listed, in order; each expected entry names the fields it checks."""
    actual = [{key: getattr(p, key) for key in want} for p, want in zip(problems, expected, strict=False)]
    assert actual == expected, "\n".join(map(str, problems))
    assert len(problems) == len(expected), "\n".join(map(str, problems))
    assert all(p.message for p in problems)


def dump(evaluation: Evaluation) -> str:
    return json.dumps(evaluation.to_dict(), sort_keys=True)


def check(evaluation: Evaluation, expected: Mapping[str, Any], spec: Spec | None) -> None:
    explanation = json.loads(dump(evaluation))  # JSON-serialisable, and compared as stored
    assert evaluation.verdict == expected["verdict"], evaluation.summary
    if spec is not None:
        assert evaluation.verdict in spec.allowed_verdicts | {spec.enforcement.failure_mode}
    simple = {
        "reason": explanation["reason"],
        "summary": explanation["summary"],
        "winner": explanation["winning_policy_id"],
        "matched": explanation["matched_policy_ids"],
        "tied_policies": explanation["tied_policy_ids"],
        "candidates": [p["policy_id"] for p in explanation["policies"]],
        "spec": explanation["spec"] and f"{explanation['spec']['spec_id']}@{explanation['spec']['version']}",
        "snapshot": explanation["snapshot"]
        and f"{explanation['snapshot']['snapshot_id']}@{explanation['snapshot']['version']}",
        "scope": explanation["scope"] and explanation["scope"]["scope_id"],
        "owning_team": explanation["scope"] and explanation["scope"]["owning_team"],
        "ancestors": explanation["scope"] and explanation["scope"]["ancestors"],
        "tied_scopes": explanation["scope"] and explanation["scope"]["tied_with"],
        "pause": explanation["pause"],
        "errors": [e["code"] for e in explanation["errors"]],
        "gap": explanation["gap"] and explanation["gap"]["code"],
        "authority": explanation["authority"],
    }
    for key, value in simple.items():
        if key in expected:
            assert value == expected[key], f"{key}: {value!r} != {expected[key]!r}\n{evaluation.summary}"
    by_id = {p["policy_id"]: p for p in explanation["policies"]}
    for policy_id, conditions in (expected.get("conditions") or {}).items():
        actual = by_id[policy_id]["conditions"]
        assert len(actual) == len(conditions), actual
        for got, want in zip(actual, conditions, strict=True):
            assert {k: got[k] for k in want} == want, got
    for policy_id, error in (expected.get("policy_errors") or {}).items():
        assert error in (by_id[policy_id]["error"] or ""), by_id[policy_id]
    if "flips" in expected:
        assert spec is not None
        found = flips(explanation, spec.enforcement.default_verdict, spec.signals)
        assert [f.sentence(explanation["verdict"]) for f in found] == expected["flips"]
    for fragment in expected.get("error_messages") or []:
        assert any(fragment in e["message"] for e in explanation["errors"]), explanation["errors"]
