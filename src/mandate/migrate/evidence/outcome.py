"""Evidence of what follows the migration: the smoke tests, the rehearsal on staging, and the run as a whole — one
function per checklist section, each adding its findings to the evidence (the last ones read the earlier ones)."""

from __future__ import annotations

from pathlib import Path

from mandate.migrate.record import (
    Data,
    Evidence,
    Finding,
    finding,
    pass_or_fail,
    why_not,
)


def _smoke(data: Data, key: str) -> Finding:
    smoke = data.get("smoke") or {}
    if smoke.get("skipped"):
        return finding("not_run", f"smoke tests not run: {smoke['skipped']}")
    test = next((t for t in smoke.get("tests") or [] if t["key"] == key), None)
    if test is None:
        return finding("not_run", "smoke tests did not run: " + why_not(data, "smoke tests"))
    where = "Mandate's API started in-process on the migrated database" if smoke["in_process"] else smoke["target"]
    return pass_or_fail(
        test["passed"],
        f"GET {test['url']} → {test['status_code']}: {test['detail']} ({where})",
        f"GET {test['url']} → {test['status_code']}: {test['detail']}",
    )


def _run_success(data: Data) -> bool:
    return data.get("outcome") == "succeeded"


def of_smoke_tests(data: Data, e: Evidence) -> None:
    """The smoke tests against the API."""
    for key in ("health", "decisions", "verdicts", "domain"):
        e[f"smoke.{key}"] = _smoke(data, key)
    smoke = data.get("smoke") or {}
    if smoke.get("tests"):
        e["smoke.all"] = pass_or_fail(
            bool(smoke.get("passed")),
            f"all 4 smoke tests passed against {smoke['target']}",
            f"{sum(1 for t in smoke['tests'] if not t['passed'])} smoke test(s) failed",
        )
        e["smoke.errors"] = finding(
            "info", f"{sum(1 for t in smoke['tests'] if not t['passed'])} error(s) in the smoke run"
        )
        e["smoke.configured"] = finding(
            "pass", "the runbook's health check and smoke tests: " + ", ".join(t["url"] for t in smoke["tests"])
        )
    else:
        reason = smoke.get("skipped") or why_not(data, "smoke tests")
        e["smoke.all"] = finding("not_run", f"not run: {reason}")
        e["smoke.errors"] = finding("info", f"not run: {reason}")
        e["smoke.configured"] = finding(
            "pass", "prepared: GET /api/health, /api/decisions, /api/verdicts, /api/decisions?domain=<a real domain>"
        )
    e["smoke.endpoints"] = finding(
        "info",
        "Mandate's own API: /api/health, /api/decisions, /api/verdicts (and /api/v1/…); domain ids are slugs and "
        "scope ids human-readable after 008; other consumers of the database are unknown to the runbook",
    )


def of_rehearsal(data: Data, e: Evidence) -> None:
    """Testing on staging: this dry run, or the last rehearsal recorded."""
    dry = bool(data.get("dry_run"))
    rehearsal = data.get("rehearsal")
    for key, part in (
        ("rehearsal.prechecks", "prechecks"),
        ("rehearsal.migration", "migration"),
        ("rehearsal.post", "post"),
        ("rehearsal.constraints", "constraints"),
        ("rehearsal.prefix", "prefix"),
    ):
        if dry:
            source = {
                "prechecks": e["prechecks.passed"],
                "migration": e["migration.errors"],
                "post": e["post.passed"],
                "constraints": e["constraints.slug"]
                if e["constraints.slug"]["status"] != "pass"
                else e["constraints.valid"],
                "prefix": e["constraints.prefix"],
            }[part]
            e[key] = finding(source["status"], f"this dry run (a rehearsal): {source['text']}")
        elif rehearsal:
            ok = bool((rehearsal.get("checks") or {}).get(part))
            where = (
                f"the {'dry run' if rehearsal['dry_run'] else 'run'} of {rehearsal['when']} on {rehearsal['database']}"
            )
            e[key] = pass_or_fail(ok, f"{where}: passed", f"{where}: did not pass")
        else:
            e[key] = finding(
                "not_run", "no rehearsal recorded: run `mandate migrate run 008 --dry-run` on a staging copy first"
            )
    e["rehearsal.findings"] = finding(
        "info",
        "warnings of this run: " + ("; ".join(data.get("warnings") or []) or "none"),
    )


def of_the_run(data: Data, e: Evidence) -> None:
    """The run as a whole: timeline, runtime, errors, report, success."""
    dry = bool(data.get("dry_run"))
    failure = data.get("failure")
    steps = data.get("steps") or []
    e["run.timeline"] = finding(
        "pass",
        f"every step timestamped (log {data.get('log_path')}): "
        + ", ".join(f"{s['name']} {s['started_at']}" for s in steps),
    )
    total = data.get("duration_s")
    est = (data.get("estimate") or {}).get("total_s")
    e["run.total_runtime"] = (
        finding("pass", f"{total:.1f} s in total" + (f" (estimated {est:.1f} s)" if est is not None else ""))
        if total is not None
        else finding("not_run", "the run did not finish")
    )
    e["run.no_errors"] = pass_or_fail(
        failure is None,
        "no error during the run",
        f"error in {failure['step']}: {failure['message'][:300]}" if failure else "",
    )
    report_paths = data.get("report_paths") or {}
    e["run.report"] = finding("pass", f"this report: {report_paths.get('markdown')} and {report_paths.get('json')}")
    e["run.artifacts"] = finding(
        "pass",
        f"in {data.get('run_dir')}: " + ", ".join(Path(p).name for p in data.get("artifacts") or []),
    )
    e["run.metrics"] = pass_or_fail(
        total is not None and e["baseline.intact"]["status"] == "pass",
        "total runtime, data integrity, errors and service health are documented in this report",
        "not all final metrics are available: " + why_not(data, "the run"),
    )
    a_keys = [
        k
        for k in (
            "preflight.connectivity",
            "prechecks.passed",
            "post.passed",
            "baseline.intact",
            "constraints.slug",
            "constraints.prefix",
            "constraints.valid",
            "smoke.all",
        )
        if k in e
    ]
    all_ok = all(e[k]["status"] == "pass" for k in a_keys)
    e["run.all_checks"] = pass_or_fail(
        all_ok and failure is None,
        "pre-flight, pre-checks, post-verification, baseline, constraint and smoke tests all passed",
        "not all passed: " + ", ".join(k for k in a_keys if e[k]["status"] != "pass"),
    )
    e["run.success"] = pass_or_fail(
        _run_success(data) and all_ok,
        "migrated, verified before and after COMMIT, constraint and smoke tests passed",
        "not successful: " + (failure["message"][:200] if failure else ("dry run (rehearsal)" if dry else "see above")),
    )
    e["logs"] = finding(
        "info",
        f"your services' logs were not scanned (the runbook cannot see them); the run's own log is {data.get('log_path')}",
    )
    e["plan.phases"] = finding(
        "info",
        "008 runs in 10 phases (the checklist's '13' refers to the original script): "
        + "; ".join(data.get("phase_plan") or []),
    )
    e["none"] = finding("info", "outside what the runbook can see or do")
