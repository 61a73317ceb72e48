"""The runbook's checks of the migrated database, before COMMIT (inside the migration transaction, where a failure
rolls everything back) and again after it: the post-migration verification script with the comparison against the
baseline, and the constraint tests. Each result goes into the run's record and its log."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from mandate.db import migration_runbook
from mandate.errors import CheckFailed
from mandate.migrate import baseline, checks, constraints, smoke
from mandate.migrate.progress import Progress


def verify(
    conn: psycopg.Connection[Any],
    progress: Progress,
    data: dict[str, Any],
    before: dict[str, baseline.TableState],
    *,
    after_commit: bool,
) -> None:
    """The POST script and the comparison with the baseline: rows and content checksums before COMMIT (where a
    difference rolls everything back), row counts again after COMMIT (the content is what was just verified)."""
    with progress.step("post-verification") as step:
        script = checks.CheckScript.named(checks.POST)
        if after_commit:
            result = checks.run_alone(conn, script)
            now = baseline.counts(conn)
            data["postchecks_after_commit"] = result.as_json()
            data["baseline"]["counts_after_commit"] = now
            diffs = [
                f"{t}: {b.rows} rows before, {now.get(t)} after COMMIT"
                for t, b in before.items()
                if now.get(t) != b.rows
            ]
            data["baseline"]["differences_after_commit"] = diffs
        else:
            result = checks.run(conn, script)
            after = baseline.capture(conn)
            data["postchecks"] = result.as_json()
            data["baseline"]["after"] = baseline.as_json(after)
            diffs = baseline.compare(before, after)
            data["baseline"]["differences"] = diffs
            data["baseline"]["created_by_remedies"] = baseline.created_by_remedies(conn)
        log_checks(progress, result)
        step.summary = (
            ("after COMMIT: " if after_commit else "")
            + result.summary()
            + ("; " if diffs else "; rows " + ("" if after_commit else "and content ") + "unchanged")
            + (f"{len(diffs)} table(s) differ" if diffs else "")
        )
        for d in diffs:
            progress.log(f"   {d}", style="red")
        if result.failed or diffs:
            problems = [r.describe() for r in result.failed] + diffs
            where = "after COMMIT" if after_commit else "before COMMIT; everything was rolled back"
            raise CheckFailed(
                f"post-migration verification failed ({where}):\n" + "\n".join(f"  - {p}" for p in problems)
            )


def after_commit(
    conn: psycopg.Connection[Any], progress: Progress, data: dict[str, Any], before: dict[str, baseline.TableState]
) -> None:
    """After COMMIT: the verification and the constraint tests again, ANALYZE of the rebuilt tables (fresh tables
    have no statistics), and the plan of the domain-scoped decisions query."""
    verify(conn, progress, data, before, after_commit=True)
    with progress.step("constraint tests") as step:
        result = constraints.run_alone(conn)
        data["constraints_after_commit"] = result.as_json()
        log_constraints(progress, result)
        step.summary = f"after COMMIT: {sum(t.passed for t in result.tests)}/3 passed"
        if not result.passed:
            raise CheckFailed("the constraint tests failed after COMMIT: " + constraint_failures(result))
    started = time.perf_counter()
    migration_runbook.analyze(conn)
    data["analyze"] = {"tables": list(baseline.TABLES), "duration_s": round(time.perf_counter() - started, 3)}
    progress.log(
        f"ANALYZE of the rebuilt tables: {time.perf_counter() - started:.2f} s (fresh tables have no statistics)"
    )
    data["explain"] = explain(conn)


def explain(conn: psycopg.Connection[Any]) -> str | None:
    """The plan of the API's domain-scoped decisions query on the smoke tests' domain, on one line."""
    target = smoke.pick_target(conn)
    if target.domain is None or target.organization_id is None:
        return None
    lines = migration_runbook.explain_domain_query(conn, target.organization_id, target.domain)
    return " / ".join(line.strip() for line in lines)


def log_checks(progress: Progress, result: checks.CheckRun) -> None:
    for r in result.results:
        style = {"FAIL": "red", "WARN": "yellow"}.get(r.status)
        text = r.describe() if r.status in ("FAIL", "WARN") else f"{r.check_id} {r.title}: {r.status} ({r.measured})"
        progress.log(f"   {text}", style=style)


def log_constraints(progress: Progress, result: constraints.ConstraintRun) -> None:
    for t in result.tests:
        progress.log(f"   {'PASS' if t.passed else 'FAIL'} {t.title}: {t.outcome}", style=None if t.passed else "red")


def constraint_failures(result: constraints.ConstraintRun) -> str:
    parts = [f"{t.title}: expected {t.expected}, got {t.outcome}" for t in result.tests if not t.passed]
    if result.leftovers:
        parts.append(f"{result.leftovers} test row(s) survived the rollback")
    return "; ".join(parts)
