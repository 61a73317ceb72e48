"""Same inputs, same explanation, byte for byte — across processes with different hash seeds too."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CASES = Path(__file__).parent / "cases"
RICH_CASES = [
    "demo_config_critical_drop_without_backup_blocks",
    "demo_refund_250_on_departed_flight_pauses",
    "scope_ancestor_policies_apply",
    "scope_tie_all_tied_scopes_hold_authority",
    "tie_three_way_lists_every_tied_policy",
    "failure_mode_block_on_error",
    "signal_from_timestamp_as_epoch_seconds",
]

# Runs in a fresh interpreter: loads a case with nothing but PyYAML and the evaluator's public API.
SCRIPT = r"""
import json, sys
from datetime import datetime
import yaml
from mandate.evaluator import *

ORG, TS = "550e8400-e29b-41d4-a716-446655440000", "2025-06-01T12:00:00+00:00"
out = {}
for path in sys.argv[1:]:
    case = yaml.safe_load(open(path))
    org, domain = case.get("organization_id", ORG), case.get("domain", "finance")
    specs = []
    for s in case["specs"]:
        if s.get("status", "active") != "active":
            continue
        e = s.get("enforcement") or {}
        specs.append(Spec(
            s["spec_id"], str(s.get("version", "1")), s.get("organization_id", org), s.get("domain", domain),
            s["intent"], s.get("stage", "pre_commit"),
            tuple(SignalDef(g["name"], SignalType(g["type"]), g.get("required", False),
                            SignalSource(g.get("source", "context")), tuple(g.get("values", ()))) for g in s["signals"]),
            frozenset(Verdict(v) for v in s.get("allowed_verdicts", ["ALLOW", "PAUSE", "BLOCK", "OBSERVE"])),
            Enforcement(tuple(e.get("pause_requires", ())), e.get("resolution_timeout_minutes"),
                        Verdict(e.get("default_verdict", "OBSERVE")), Verdict(e.get("failure_mode", "OBSERVE")))))
    scopes = [Scope(**{"organization_id": org, "domain": domain, **s}) for s in case["scopes"]]
    snap = max(case["snapshots"], key=lambda s: s["version"])
    policies = [Policy(p["policy_id"], p["spec_id"], p["scope_id"], p["verdict"],
                       tuple(Condition(c["signal"], c["operator"], c.get("value")) for c in p["conditions"] or ()))
                for p in snap["policies"]]
    snapshot = compile_snapshot(snap["snapshot_id"], snap["version"], org, domain, policies, specs, scopes)
    r = case["request"]
    decision = Decision(org, domain, r["intent"], r.get("stage", "pre_commit"), r.get("context") or {},
                        r.get("scope") or {}, datetime.fromisoformat(r.get("timestamp", TS)))
    spec = next(s for s in specs if (s.intent, s.stage) == (decision.intent, decision.stage))
    evaluation = evaluate(decision, spec, ScopeIndex(scopes).resolve(decision), snapshot)
    out[path] = json.dumps(evaluation.to_dict(), sort_keys=True)
print(json.dumps(out, sort_keys=True))
"""


def explanations(hash_seed: str) -> dict[str, str]:
    paths = [str(CASES / f"{name}.yaml") for name in RICH_CASES]
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "TZ": "Pacific/Kiritimati" if hash_seed == "1" else "UTC"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *paths], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    result: dict[str, str] = json.loads(done.stdout)
    return result


@pytest.mark.slow
def test_explanations_are_identical_across_processes_hash_seeds_and_time_zones() -> None:
    first, second = explanations("1"), explanations("2")

    assert first == second
    assert len(first) == len(RICH_CASES)
    assert all('"verdict":' in text for text in first.values())
