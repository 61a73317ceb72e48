"""Evidence of the migration itself: the baseline, the migration transaction, the post-migration verification and
the constraint tests — one function per checklist section, each adding its findings to the evidence."""

from __future__ import annotations

from mandate.migrate import checklist
from mandate.migrate.record import (
    Data,
    Evidence,
    Finding,
    check_results,
    committed,
    differences,
    finding,
    pass_or_fail,
    remedies_summary,
    why_not,
    with_status,
)


def _post_evidence(data: Data, check_ids: list[str]) -> Finding:
    before, after = check_results(data, "postchecks"), check_results(data, "postchecks_after_commit")
    if not before:
        return finding("not_run", "post-migration verification did not run: " + why_not(data, "post-verification"))
    runs = [("before COMMIT", before)] + ([("after COMMIT", after)] if after else [])
    lines, ok = [], True
    for label, results in runs:
        by_id = {r["check_id"]: r for r in results}
        for cid in check_ids:
            r = by_id.get(cid)
            if r is None:
                ok = False
                lines.append(f"{cid} missing from the verification script ({label})")
            else:
                ok = ok and r["status"] in ("PASS", "INFO")
                lines.append(f"{cid} {r['status']} {label}: {r['measured']}")
    if data.get("dry_run"):
        lines.append("(dry run: verified inside the transaction, then rolled back)")
    return finding("pass" if ok else "fail", "; ".join(lines))


def of_baseline(data: Data, e: Evidence) -> None:
    """Row counts and content checksums before and after the migration."""
    base = data.get("baseline") or {}
    before = base.get("before") or {}
    after = base.get("after") or {}
    after_commit = base.get("counts_after_commit") or {}
    if before:
        sizes = (data.get("preflight") or {}).get("tables") or {}
        e["baseline.captured"] = finding(
            "pass",
            "rows and content checksums of the 8 tables before the migration, in its transaction: "
            + ", ".join(f"{t} {s['rows']}" for t, s in before.items())
            + (f"; sizes and indexes at pre-flight: {len(sizes)} tables measured" if sizes else ""),
        )
    else:
        e["baseline.captured"] = finding("not_run", "no baseline: " + why_not(data, "migration"))
    diffs = differences(data)
    if before and after:
        label = "before and after the migration" + (" (row counts again after COMMIT)" if after_commit else "")
        e["baseline.intact"] = pass_or_fail(
            not diffs,
            f"every table has the same rows and content checksums {label}",
            "differences: " + "; ".join(diffs),
        )
        for table in ("decision_events", "verdict_events", "audit_timeline_entries"):
            b, a, rows_now = before.get(table), after.get(table), after_commit.get(table)
            same = bool(b and a and b["rows"] == a["rows"] and b["checksum"] == a["checksum"])
            committed = "" if rows_now is None else f", {rows_now} after COMMIT"
            e[f"baseline.{table}"] = pass_or_fail(
                same and (rows_now is None or rows_now == (b or {}).get("rows")),
                f"{b['rows'] if b else '?'} rows before, {a['rows'] if a else '?'} after{committed}, same content checksum",
                f"{b['rows'] if b else '?'} rows before, {a['rows'] if a else '?'} after{committed}"
                + ("" if same else ", content changed"),
            )
    else:
        e["baseline.intact"] = finding("not_run", "not compared: " + why_not(data, "post-verification"))
        for table in ("decision_events", "verdict_events", "audit_timeline_entries"):
            e[f"baseline.{table}"] = e["baseline.intact"]


def of_migration(data: Data, e: Evidence) -> None:
    """The migration transaction: started, its phases, errors, COMMIT, migration_log."""
    dry = bool(data.get("dry_run"))
    post = check_results(data, "postchecks")
    mig = data.get("migration") or {}
    failure = data.get("failure")
    diffs = differences(data)
    started = mig.get("started_at")
    error = mig.get("error")
    e["migration.started"] = (
        finding("pass", f"started {started} ({', '.join(mig.get('applied') or []) or 'migration 008'})")
        if started
        else finding("not_run", "the migration did not start: " + why_not(data, "migration"))
    )
    phases = data.get("phases") or []
    e["migration.progress"] = (
        finding(
            "pass",
            f"{len(phases)} phase(s) timed from 008's NOTICEs, live display and log: "
            + ", ".join(f"{p['number']}/{p['of']} {p['duration_s']:.2f} s" for p in phases),
        )
        if phases
        else finding("not_run", "no phase was reached")
    )
    if started:
        e["migration.errors"] = pass_or_fail(
            not error, "no SQL error", f"error: {error} (SQLSTATE {mig.get('sqlstate') or '?'})"
        )
        e["migration.branch"] = finding(
            "pass",
            "evaluated: an error occurred → stopped and rolled back" if error else "evaluated: no error occurred",
        )
        e["migration.error_message"] = finding(
            "pass",
            f"{error} (SQLSTATE {mig.get('sqlstate') or '?'}, during {mig.get('phase_at_error') or 'the transaction'})"
            if error
            else "no error to note",
        )
        e["migration.stopped_on_error"] = finding(
            "pass",
            "stopped at the error; the single transaction was rolled back, the database is unchanged"
            if error
            else "one transaction: any error stops it and rolls everything back (none occurred)",
        )
        e["migration.diagnostics"] = finding(
            "info",
            f"SQLSTATE {mig.get('sqlstate')}, phase {mig.get('phase_at_error')}: {error}" if error else "no error",
        )
        if dry:
            e["migration.begin_commit"] = finding("not_run", "dry run: BEGIN → ROLLBACK by design (a rehearsal)")
        else:
            e["migration.begin_commit"] = pass_or_fail(
                committed(data),
                f"BEGIN at {started} → COMMIT at {mig.get('committed_at')}",
                "BEGIN → ROLLBACK: " + (error or (failure or {}).get("message", "")),
            )
    else:
        reason = "the migration did not start: " + why_not(data, "migration")
        for key in ("migration.errors", "migration.branch", "migration.error_message", "migration.stopped_on_error"):
            e[key] = finding("not_run", reason)
        e["migration.begin_commit"] = finding("not_run", reason)
        e["migration.diagnostics"] = finding("info", reason)
    completed = committed(data) and bool(post) and not with_status(post, "FAIL") and not diffs
    e["migration.completed"] = (
        finding("not_run", "dry run: rehearsed completely, then rolled back")
        if dry and data.get("outcome") == "rehearsed"
        else pass_or_fail(
            completed, "committed, verified before and after COMMIT", "not completed: " + why_not(data, "migration")
        )
    )


def of_migration_log(data: Data, e: Evidence) -> None:
    """008's migration_log row, as the migration wrote it (read back before a dry run rolls it back)."""
    dry = bool(data.get("dry_run"))
    log = data.get("migration_log")
    e["migration_log.row"] = (
        finding(
            "pass" if not dry else "info",
            f"migration_log version {log['migration_version']} {log['name']}: checksum {str(log['checksum'])[:16]}…, "
            f"{log['duration_ms']} ms, by {log['applied_by']} with {log['tool_version']}"
            + (
                f", remedies recorded: {remedies_summary(log['details'].get('remedies') or {})}"
                if log.get("details")
                else ""
            )
            + (" (dry run: written, read back, rolled back)" if dry else ""),
        )
        if log
        else finding("not_run", "no migration_log row: " + why_not(data, "migration"))
    )
    if dry and log:
        e["migration_log.row"]["status"] = "not_run"


def of_post_verification(data: Data, e: Evidence) -> None:
    """The post-migration verification, ANALYZE and the query plan."""
    dry = bool(data.get("dry_run"))
    post = check_results(data, "postchecks")
    post_after = check_results(data, "postchecks_after_commit")
    diffs = differences(data)
    if post:
        failed_post = with_status(post, "FAIL") + with_status(post_after, "FAIL")
        runs = "before COMMIT" + (" and after COMMIT" if post_after else "")
        e["post.run"] = finding("pass", f"ran {data['postchecks']['script']} {runs}: {len(post)} checks")
        e["post.passed"] = pass_or_fail(
            not failed_post and not diffs,
            f"all {len(post)} checks passed {runs}; rows and content unchanged",
            "failed: "
            + "; ".join(f"{r['check_id']} {r['title']}: {r['measured']}" for r in failed_post)
            + "; ".join(diffs),
        )
        e["post.output"] = finding("info", f"{len(post)} checks with their measured values are in the report")
    else:
        reason = "the post-migration verification did not run: " + why_not(data, "post-verification")
        e["post.run"] = e["post.passed"] = finding("not_run", reason)
        e["post.output"] = finding("info", reason)
    for key, ids in checklist.post_checks().items():
        if key != "migration_log.row":
            e[key] = _post_evidence(data, ids)
    sub = [
        "post.domain_id_gone",
        "post.scope_id_text",
        "post.no_null_domains",
        "post.scope_prefix",
        "baseline.intact",
        "post.composite_indexes",
        "post.triggers",
        "post.foreign_keys",
    ]
    e["post.confirmed"] = pass_or_fail(
        all(e[k]["status"] == "pass" for k in sub),
        "all eight confirmations below hold",
        "not all confirmed: " + ", ".join(k for k in sub if e[k]["status"] != "pass"),
    )
    analyze = data.get("analyze")
    e["post.analyze"] = (
        finding("pass", f"ANALYZE of {len(analyze['tables'])} tables in {analyze['duration_s']:.2f} s after COMMIT")
        if analyze
        else finding("not_run", "not run: " + ("dry run" if dry else why_not(data, "ANALYZE")))
    )
    e["post.explain"] = finding(
        "info",
        f"plan of the domain-scoped decisions query: {data['explain']}" if data.get("explain") else "not captured",
    )


def of_constraint_tests(data: Data, e: Evidence) -> None:
    """The checklist's three constraint tests, before and after COMMIT."""
    cons = data.get("constraints") or {}
    cons_after = data.get("constraints_after_commit") or {}
    for key in ("slug", "prefix", "valid"):
        tests = [t for run in (cons, cons_after) for t in run.get("tests") or [] if t["key"] == key]
        if not tests:
            e[f"constraints.{key}"] = finding(
                "not_run", "constraint tests did not run: " + why_not(data, "constraint tests")
            )
            continue
        ok = all(t["passed"] for t in tests) and not cons.get("leftovers") and not cons_after.get("leftovers")
        t = tests[-1]
        when = "before and after COMMIT" if len(tests) > 1 else "before COMMIT"
        e[f"constraints.{key}"] = pass_or_fail(
            ok,
            f"`{t['statement']}` → {t['outcome']} ({when}; rolled back, no test row left)",
            f"`{t['statement']}` → {t['outcome']}; expected {t['expected']}",
        )
