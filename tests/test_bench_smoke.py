"""The benchmark suite's smoke test: `python -m bench all --quick` runs every benchmark tiny and writes its results;
bench/approvals.py, bench/ui.py, bench/batch.py, bench/openloop.py, bench/split008.py, bench/writes.py and
bench/cpu.py, which `bench all` does not run, run alone with `--quick`.

Nothing about speed is asserted (CI's machine is shared and noisy); this proves the benchmarks still run against
the current code, store what they load, and produce the report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def quick(tmp_path: Path, module: str, out: Path, timeout: float = 280) -> subprocess.CompletedProcess[str]:
    """`python -m <module> --quick --out <out>` from the repository, its temporary files under `tmp_path`."""
    return subprocess.run(
        [sys.executable, "-m", *module.split(), "--quick", "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "MANDATE_BENCH_TMP": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def quick_results(tmp_path: Path, module: str) -> dict[str, Any]:
    """The results of `quick` for a standalone benchmark (`bench.<name>`), which must have succeeded."""
    out = tmp_path / f"{module.removeprefix('bench.')}.json"
    done = quick(tmp_path, module, out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results: dict[str, Any] = json.loads(out.read_text())
    return results


@pytest.mark.slow
def test_every_benchmark_runs_quick_and_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = quick(tmp_path, "bench all", out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert {"evaluator", "ingest", "memory", "migration", "reads"} <= set(results)
    assert all(level["http"]["verification"]["ok"] for level in results["ingest"]["levels"])
    assert all(
        s["verdicts_agree"] == s["verdicts_compared"] for s in results["evaluator"]["sizes"] if "verdicts_agree" in s
    )
    assert (out / "benchmarks.md").read_text().startswith("# Benchmarks")


@pytest.mark.slow
def test_the_approvals_benchmark_runs_quick_and_verifies_what_it_loaded(tmp_path: Path) -> None:
    out = tmp_path / "approvals.json"
    done = quick(tmp_path, "bench.approvals", out, timeout=120)
    assert out.is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())  # its targets may be missed here: nothing about speed is asserted
    resume, long_poll = results["resume"], results["long_poll"]
    assert resume["ok"], resume["stored"]
    assert resume["stored"]["resumes_consumed_with_allow"] == resume["stored"]["resumes_sent"] > 0
    assert long_poll["ok"] and long_poll["statuses"] == {"200": long_poll["polls"]}, long_poll
    assert long_poll["woken_states"] == ["approved"] and long_poll["others_states"] == ["pending"]


@pytest.mark.slow
def test_the_ui_benchmark_runs_quick_and_checks_what_it_generated(tmp_path: Path) -> None:
    results = quick_results(tmp_path, "bench.ui")  # its target may be missed here: nothing about speed is asserted
    check = results["check"]
    assert check["ok"] and not any(check["orphans"].values()), check
    assert check["counts"]["decision_events"] == results["decisions"] == 20_000
    assert results["read_back"]["ok"], results["read_back"]
    assert all(
        p["statuses"] == {"200": p["requests"]} and p["server_ms"]["n"] == p["requests"] for p in results["pages"]
    )


@pytest.mark.slow
def test_the_batch_benchmark_runs_quick_and_counts_what_it_stored(tmp_path: Path) -> None:
    results = quick_results(tmp_path, "bench.batch")  # its target may be missed here: nothing about speed is asserted
    assert results["ok"] and results["stored_counted_in_sql"] == results["answered_201"] > 0, results
    assert all(not run["bad"] for runs in results["rounds"].values() for run in runs)
    cpu = results["cpu_ms_per_decision"]  # both kinds' server and PostgreSQL CPU, and their ratio
    assert all(cpu[kind][side] > 0 for kind in ("single", "batch") for side in ("server", "postgres")), cpu
    assert results["cpu_ratio"] > 0


@pytest.mark.slow
def test_the_openloop_benchmark_runs_quick_and_counts_what_it_stored(tmp_path: Path) -> None:
    results = quick_results(tmp_path, "bench.openloop")  # its bars may be missed here: nothing about speed is asserted
    stored = results["decision_events"]
    assert results["ok"] and stored["counted_in_sql"] == stored["answered_201"] > 0 and not stored["unanswered"]
    assert all(c["stored"]["ok"] and not c["errors"] and c["answered_201"] > 0 for c in results["cells"])
    assert {c["client"] for c in results["ceiling"]} >= {"raw asyncio streams on uvloop"}
    (alone,) = results["database_alone"]  # the reference: PostgreSQL alone at the one offered rate
    assert alone["offered_per_s"] == 50 and alone["transactions"] > 0 and alone["failed"] == 0


@pytest.mark.slow
def test_the_split_008_experiment_runs_quick_and_builds_every_deferred_index(tmp_path: Path) -> None:
    results = quick_results(tmp_path, "bench.split008")
    deferred = results["deferred"]
    assert len(deferred) == 26 and not any(k in name for name in deferred for k in ("org_domain", "decision_id"))
    assert results["split"]["all_valid"] and [b["index"] for b in results["split"]["after_commit"]] == deferred
    assert results["as shipped"]["m008_s"] > 0 and results["split"]["m008_s"] > 0


@pytest.mark.slow
def test_the_writer_benchmark_runs_quick_and_stores_every_decision_every_way(tmp_path: Path) -> None:
    results = quick_results(tmp_path, "bench.writes")  # nothing about speed is asserted
    (row,) = results["sizes"]
    assert row["ok"] and row["stored"] == 3 * (5 + 5) * 8, row  # three ways: 5 warm-up and 5 measured batches of 8
    assert set(row["ways"]) == {"multi-row statement", "one statement each", "multi-row, without the agent index"}
    assert all(w["client_cpu_us"] > 0 and w["batch_ms"] > 0 for w in row["ways"].values())


@pytest.mark.slow
def test_the_cpu_attribution_benchmark_runs_quick_and_stores_every_decision(tmp_path: Path) -> None:
    results = quick_results(tmp_path, "bench.cpu")  # nothing about speed is asserted
    assert results["ok"]
    (process,) = results["in_process"]
    (http,) = results["over_http"]
    assert process["stored"] == process["decisions"] == 40 and http["verification"]["ok"]
    # Every named part was reached by the demo decisions (the executed stages read their approval facts).
    assert all(value > 0 for value in process["parts_us"].values()), process["parts_us"]
    assert set(results["round_trips_us"]) == {
        f"{q}, {way}" for q in ("SELECT 1", "SELECT of 30 parameters") for way in ("async", "blocking")
    }
