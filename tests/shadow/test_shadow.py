"""Shadow evaluation on a real database: the demo governance, decisions stored through a live server, candidates.

A candidate identical to the governance in force changes nothing (a replay-identity check over all history);
hand-built candidates give exactly the expected from → to counts; gates pass and fail as declared; a bundle that
fails validation is refused before any evaluation; nothing is ever written to governance tables.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from mandate.apply import apply_bundle
from mandate.db.history import Window
from mandate.governance.bundle import BundleError, load_bundle, load_demo_bundle
from mandate.governance.plan import TABLES
from mandate.shadow import gates as gating
from mandate.shadow.report import to_html, to_json
from mandate.shadow.run import shadow
from tests.helpers import run_cli, scalar
from tests.web.conftest import bearer, issue_token, start_server
from tests.web.test_api import CRITICAL_DROP, LARGE_WRITE, OBSERVED, flat

DEMO: dict[str, Any] = yaml.safe_load(
    resources.files("mandate.governance").joinpath("demo.yaml").read_text(encoding="utf-8")
)
SMALL_WRITE = (
    "file.write",
    "pre_commit",
    "pre-commit-agent",
    "/data/config/app.yaml",
    {"content_length": 2048, "content_type": "yaml"},
    "config-writer",
    "pre-commit-agent",
)
SAFE_DROP = (
    "database.drop_table",
    "pre_commit",
    "pause-escalation-agent",
    "staging.tmp",
    {"backup_first": True, "risk_level": "low", "reversible": True},
    "db-admin-tool",
    "pause-escalation-agent",
)


@pytest.fixture(scope="module")
def history(pg: Any, templates: Any) -> Iterator[tuple[str, dict[str, list[str]]]]:
    """A database with the demo governance and stored decisions (ids by kind); shared, never changed by a test."""
    name = f"{templates(None)}_shadow"
    url = pg.create(name, template=templates(None))
    with psycopg.connect(url, autocommit=True) as conn:
        apply_bundle(conn, load_demo_bundle())
    server, thread, base = start_server(url)
    ids: dict[str, list[str]] = {}
    try:
        with httpx.Client(base_url=base, timeout=10, headers=bearer(issue_token(url, role="agent"))) as client:
            for kind, request, n in (("drop", CRITICAL_DROP, 3), ("large", LARGE_WRITE, 2), ("small", SMALL_WRITE, 4),
                                     ("safe_drop", SAFE_DROP, 2)):  # fmt: skip
                for _ in range(n):
                    answer = client.post("/api/decisions", json=flat(*request))
                    assert answer.status_code == 201, answer.text
                    ids.setdefault(kind, []).append(answer.json()["decision_id"])
            for intent, context in OBSERVED:
                body = flat(intent, "executed", "observe-agent", "audit-log", context, "audit-logger", "observe-agent")
                assert client.post("/api/decisions", json=body).status_code == 201
    finally:
        server.should_exit = True
        thread.join(timeout=15)
    yield url, ids
    pg.drop(name)


def governance_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {table: scalar(conn, f"SELECT count(*) FROM mandate.{table}") for table in TABLES}


def candidate(tmp_path: Path, change: Any = None) -> Path:
    """The demo bundle, changed by `change(data)`, written to a file."""
    data = copy.deepcopy(DEMO)
    if change is not None:
        change(data)
    path = tmp_path / "candidate.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def config_snapshot(data: dict[str, Any]) -> dict[str, Any]:
    snapshot: dict[str, Any] = next(s for s in data["snapshots"] if s["domain"] == "config-management")
    return snapshot


def without_block_policy(data: dict[str, Any]) -> None:
    snapshot = config_snapshot(data)
    data["snapshots"].append(
        {**snapshot, "version": 2, "policies": [p for p in snapshot["policies"] if p["id"] != "policy-block-unbackedup-drops-v1"]}
    )  # fmt: skip


def requiring_a_new_signal(data: dict[str, Any]) -> None:
    spec = next(s for s in data["specs"] if s["spec_id"] == "spec-pre-commit-file-write-v1")
    spec["status"] = "deprecated"
    data["specs"].append(
        {**copy.deepcopy(spec), "version": "2", "status": "active",
         "signals": [*spec["signals"], {"name": "reviewed_by", "type": "string", "required": True, "source": "context"}]}
    )  # fmt: skip
    snapshot = config_snapshot(data)
    data["snapshots"].append({**copy.deepcopy(snapshot), "version": 2})


def test_a_candidate_identical_to_the_governance_in_force_changes_nothing(
    history: tuple[str, dict[str, list[str]]], tmp_path: Path
) -> None:
    url, _ = history
    before = governance_counts(url)

    result = shadow(url, load_bundle([candidate(tmp_path)]), Window(), workers=1)

    t = result.tally
    assert t.evaluated == 14 and t.changed == 0 and t.unevaluable == 0
    assert t.drift == 0  # today's governance decides every stored decision as it was decided: replay identity
    assert t.transitions == {
        ("BLOCK", "BLOCK"): 3,
        ("PAUSE", "PAUSE"): 2,
        ("ALLOW", "ALLOW"): 6,
        ("OBSERVE", "OBSERVE"): 3,
    }
    assert governance_counts(url) == before  # nothing written


def test_removing_the_block_policy_turns_exactly_the_unbacked_drops_into_pauses(
    history: tuple[str, dict[str, list[str]]], tmp_path: Path
) -> None:
    url, ids = history
    result = shadow(url, load_bundle([candidate(tmp_path, without_block_policy)]), Window(), workers=1)

    t = result.tally
    assert {k: n for k, n in t.transitions.items() if k[0] != k[1]} == {("BLOCK", "PAUSE"): 3}
    assert t.groups[("policy", "policy-pause-critical-db-ops-v1", "BLOCK", "PAUSE")] == 3
    assert t.groups[("scope", "config-management.prod.db-admin-tool", "BLOCK", "PAUSE")] == 3
    assert t.groups[("owning_team", "dba-team", "BLOCK", "PAUSE")] == 3
    examples = t.examples[("BLOCK", "PAUSE")]
    assert [e["decision_id"] for e in examples] == sorted(ids["drop"])  # the first ones, in key order
    first = examples[0]
    assert first["before"]["winning_policy_id"] == "policy-block-unbackedup-drops-v1"
    assert first["after"]["winning_policy_id"] == "policy-pause-critical-db-ops-v1"
    conditions = {p["policy_id"]: p["conditions"] for p in first["after"]["policies"]}
    assert conditions["policy-pause-critical-db-ops-v1"][0]["actual"] == "critical"  # condition-level, after


def test_a_new_required_signal_that_was_never_sent_makes_decisions_unevaluable(
    history: tuple[str, dict[str, list[str]]], tmp_path: Path
) -> None:
    url, _ = history
    result = shadow(url, load_bundle([candidate(tmp_path, requiring_a_new_signal)]), Window(), workers=1)

    t = result.tally
    assert t.unevaluable == 6
    assert {k: n for k, n in t.transitions.items() if k[1] == "UNEVALUABLE"} == {
        ("PAUSE", "UNEVALUABLE"): 2,
        ("ALLOW", "UNEVALUABLE"): 4,
    }
    example = t.examples[("PAUSE", "UNEVALUABLE")][0]
    assert "reviewed_by" in example["after"]["summary"]


def test_a_bundle_that_fails_validation_is_refused_before_any_evaluation(
    history: tuple[str, dict[str, list[str]]], tmp_path: Path
) -> None:
    url, _ = history

    def undeclared_signal(data: dict[str, Any]) -> None:
        snapshot = config_snapshot(data)
        broken = copy.deepcopy(snapshot["policies"][0])
        broken["conditions"] = [{"signal": "no_such_signal", "operator": "==", "value": 1}]
        data["snapshots"].append({**snapshot, "version": 2, "policies": [broken]})

    progressed: list[int] = []
    with pytest.raises(BundleError, match="no_such_signal"):
        shadow(url, load_bundle([candidate(tmp_path, undeclared_signal)]), Window(), progress=progressed.append)
    assert progressed == []


def test_worker_processes_give_the_same_tally_as_one_process(
    history: tuple[str, dict[str, list[str]]], tmp_path: Path
) -> None:
    url, _ = history
    bundle = load_bundle([candidate(tmp_path, without_block_policy)])
    alone = shadow(url, bundle, Window(), workers=1)
    shared = shadow(url, bundle, Window(), workers=2)

    assert shared.workers == 2
    assert to_json(shared)["transitions"] == to_json(alone)["transitions"]
    assert shared.tally.examples == alone.tally.examples
    assert shared.tally.offenders == alone.tally.offenders


def test_the_window_selects_by_domain_and_scope(history: tuple[str, dict[str, list[str]]], tmp_path: Path) -> None:
    url, _ = history
    bundle = load_bundle([candidate(tmp_path, without_block_policy)])

    assert shadow(url, bundle, Window(domain="customer-support"), workers=1).tally.evaluated == 0
    writer = shadow(url, bundle, Window(scope="config-management.prod.config-writer"), workers=1).tally
    assert (writer.evaluated, writer.changed) == (6, 0)
    dba = shadow(url, bundle, Window(scope="config-management.prod.db-admin-tool"), workers=1).tally
    assert (dba.evaluated, dba.changed) == (5, 3)


def test_gates_pass_and_fail_as_declared(history: tuple[str, dict[str, list[str]]], tmp_path: Path) -> None:
    url, ids = history
    result = shadow(url, load_bundle([candidate(tmp_path, without_block_policy)]), Window(), workers=1)
    gates_file = tmp_path / "gates.yaml"
    gates_file.write_text(
        yaml.safe_dump(
            {
                "gates": [
                    {"name": "no BLOCK may become ALLOW", "from": "BLOCK", "to": "ALLOW", "max": 0},
                    {"name": "no BLOCK may weaken at the DBAs", "from": "BLOCK", "to": "ANY",
                     "scope": "config-management.prod", "max": 0},
                    {"from": "BLOCK", "to": "PAUSE", "max_percent": 100},
                    {"from": "BLOCK", "to": "PAUSE", "domain": "customer-support", "max": 0},
                ]
            }
        )
    )  # fmt: skip

    results = gating.check(gating.load_gates(gates_file), result.tally)

    assert [g.passed for g in results] == [True, False, True, True]
    assert results[1].count == 3 and sorted(results[1].offenders) == sorted(ids["drop"])
    assert results[2].measured == "3 of 3 (100.00 %)"
    html = to_html(result, results)
    assert "FAIL" in html and "no BLOCK may weaken at the DBAs" in html and ids["drop"][0] in html


def test_a_malformed_gates_file_names_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "gates.yaml"
    path.write_text("gates:\n  - {from: BLOCK, to: ALLOW}\n")
    with pytest.raises(Exception, match="exactly one of max and max_percent"):
        gating.load_gates(path)


def test_the_cli_reports_as_json_and_apply_refuses_to_publish_through_a_failing_gate(
    history: tuple[str, dict[str, list[str]]], tmp_path: Path
) -> None:
    url, _ = history
    bundle = candidate(tmp_path, without_block_policy)
    gates_file = tmp_path / "gates.yaml"
    gates_file.write_text("gates:\n  - {name: keep every BLOCK, from: BLOCK, to: ANY, max: 0}\n")
    env = {"DATABASE_URL": url}

    report = run_cli("shadow", str(bundle), "--since", "all", "--json", env=env)
    assert report.returncode == 0, report.stderr
    body = json.loads(report.stdout)
    assert (body["evaluated"], body["changed"]) == (14, 3)

    gated = run_cli("shadow", str(bundle), "--since", "all", "--gate", str(gates_file), "--html", str(tmp_path / "r.html"), env=env)  # fmt: skip
    assert gated.returncode == 1 and "FAIL" in gated.stdout, gated.stdout + gated.stderr
    assert (tmp_path / "r.html").read_text().startswith("<!doctype html>")

    before = governance_counts(url)
    refused = run_cli("apply", str(bundle), "--gate", str(gates_file), "--since", "all", env=env)
    assert refused.returncode == 1 and "not published" in refused.stdout, refused.stdout + refused.stderr
    assert governance_counts(url) == before

    passed = run_cli("apply", str(candidate(tmp_path)), "--gate", str(gates_file), "--since", "all", env=env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "gate pass" in " ".join(passed.stdout.split()) and "nothing to apply" in passed.stdout


def test_the_api_answers_the_report_and_refuses_an_invalid_bundle(
    history: tuple[str, dict[str, list[str]]], tmp_path: Path
) -> None:
    url, _ = history
    data = copy.deepcopy(DEMO)
    without_block_policy(data)
    admin = issue_token(url)
    before = governance_counts(url)
    server, thread, base = start_server(url)
    try:
        with httpx.Client(base_url=base, timeout=30, headers=bearer(admin)) as client:
            gate = {"name": "keep every BLOCK", "from": "BLOCK", "to": "ANY", "max": 0}
            answer = client.post("/api/shadow", json={"bundle": data, "since": "all", "gates": [gate]})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert (body["evaluated"], body["changed"]) == (14, 3)
            assert body["gates"][0]["passed"] is False and len(body["gates"][0]["offenders"]) == 3

            data["snapshots"][-1]["policies"][0]["verdict"] = "DENY"
            refused = client.post("/api/shadow", json={"bundle": data})
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["code"] == "invalid_bundle"
            assert "DENY" in json.dumps(refused.json()["error"]["problems"])
            window = client.post("/api/shadow", json={"bundle": DEMO, "since": "yesterday"})
            assert window.status_code == 422 and window.json()["error"]["problems"][0]["field"] == "since"

            # Access: admins only, narrowed to the token's domains, never another organization's governance.
            data = copy.deepcopy(DEMO)
            without_block_policy(data)
            reader = client.post("/api/shadow", json={"bundle": data}, headers=bearer(issue_token(url, role="reader")))
            assert reader.status_code == 403, reader.text
            support = bearer(issue_token(url, domains=frozenset({"customer-support"})))
            narrowed = client.post("/api/shadow", json={"bundle": data, "since": "all"}, headers=support)
            assert narrowed.status_code == 200, narrowed.text
            assert narrowed.json()["evaluated"] == 0
            elsewhere = copy.deepcopy(data)
            elsewhere["organizations"].append({"organization_id": "9a7b3c1d-0e2f-4a5b-8c6d-7e8f9a0b1c2d", "name": "x"})
            foreign = client.post("/api/shadow", json={"bundle": elsewhere})
            assert foreign.status_code == 403, foreign.text
    finally:
        server.should_exit = True
        thread.join(timeout=15)
    assert governance_counts(url) == before  # nothing written
