"""The runbook's report: the JSON record of a run, the evidence it gives each checklist item, and its Markdown.

`evidence(data)` turns the JSON record of a run into one verdict per evidence key of `checklist.yaml`:
`pass` (done or checked, with the evidence), `fail` (checked, and not met), `not_run` (this run could not or did not
do it, with why), or `info` (what the runbook contributes to an item a person judges). `render(data)` writes the
Markdown: the outcome and what to do next, timings per step and per 008 phase, estimate against actual, counts and
checksums before and after, the backup and how to restore it, every check, and the whole checklist — every one of
its 225 items and 33 troubleshooting boxes, in order, A items ticked or not with their evidence, P items with what
was run for a person to judge, H items left to people. `mandate migrate report` re-renders it from the JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mandate.migrate import checklist

FORMAT = 1
Data = dict[str, Any]
Verdict = dict[str, str]  # {"status": pass|fail|not_run|info, "text": …}

_PSQL_NOTE = (
    "the checklist's `psql -d mandate < mandate_backup_*.sql` cannot read this backup: it is a custom-format "
    "archive (pg_dump -Fc), which only pg_restore reads"
)


def _v(status: str, text: str) -> Verdict:
    return {"status": status, "text": text}


def _ok(condition: bool, good: str, bad: str) -> Verdict:
    return _v("pass", good) if condition else _v("fail", bad)


def _checks(data: Data, key: str) -> list[dict[str, Any]]:
    run = data.get(key)
    return list(run["results"]) if run else []


def _statuses(results: list[dict[str, Any]], status: str) -> list[dict[str, Any]]:
    return [r for r in results if r["status"] == status]


def _post_evidence(data: Data, check_ids: list[str]) -> Verdict:
    before, after = _checks(data, "postchecks"), _checks(data, "postchecks_after_commit")
    if not before:
        return _v("not_run", "post-migration verification did not run: " + _why_not(data, "post-verification"))
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
    return _v("pass" if ok else "fail", "; ".join(lines))


def _why_not(data: Data, step: str) -> str:
    failure = data.get("failure")
    if failure:
        return f"the run stopped earlier ({failure['step']}: {failure['message'][:200]})"
    return f"{step} was not part of this run"


def _preflight_item(data: Data, key: str) -> dict[str, Any] | None:
    pre = data.get("preflight")
    if not pre:
        return None
    return next((i for i in pre["items"] if i["key"] == key), None)


def _preflight(data: Data, key: str, pass_on: tuple[str, ...] = ("PASS", "INFO")) -> Verdict:
    item = _preflight_item(data, key)
    if item is None:
        return _v("not_run", "pre-flight did not measure it: " + _why_not(data, "pre-flight"))
    text = item["measured"] + (f" — {item['detail']}" if item.get("detail") else "")
    return _v("pass" if item["status"] in pass_on else "fail", text)


def _committed(data: Data) -> bool:
    return bool((data.get("migration") or {}).get("committed"))


def _smoke(data: Data, key: str) -> Verdict:
    smoke = data.get("smoke") or {}
    if smoke.get("skipped"):
        return _v("not_run", f"smoke tests not run: {smoke['skipped']}")
    test = next((t for t in smoke.get("tests") or [] if t["key"] == key), None)
    if test is None:
        return _v("not_run", "smoke tests did not run: " + _why_not(data, "smoke tests"))
    where = "Mandate's API started in-process on the migrated database" if smoke["in_process"] else smoke["target"]
    return _ok(
        test["passed"],
        f"GET {test['url']} → {test['status_code']}: {test['detail']} ({where})",
        f"GET {test['url']} → {test['status_code']}: {test['detail']}",
    )


def _backup(data: Data) -> dict[str, Any] | None:
    b: dict[str, Any] | None = data.get("backup")
    return b


def _services_healthy(data: Data) -> Verdict:
    services = data.get("services") or {}
    smoke = data.get("smoke") or {}
    if data.get("dry_run"):
        return _v("not_run", "dry run: services are not restarted (the database was rolled back)")
    if smoke.get("in_process") is False and smoke.get("time_to_healthy_s") is not None:
        health = next((t for t in smoke.get("tests") or [] if t["key"] == "health"), None)
        ok = health is not None and health["passed"]
        return _ok(
            ok,
            f"{smoke['target']}/api/health answered healthy {smoke['time_to_healthy_s']:.1f} s after the restart"
            + (" (--start-command)" if services.get("start") else ""),
            f"{smoke['target']}/api/health: {health['detail'] if health else 'not checked'}",
        )
    if smoke.get("in_process"):
        return _v(
            "not_run",
            "no --api-url: Mandate's API was started in-process on the migrated database and answered healthy, "
            "but your deployed services were not checked; give --api-url (and --start-command) to check them",
        )
    return _v("not_run", "services were not checked: " + _why_not(data, "smoke tests"))


def _run_success(data: Data) -> bool:
    return data.get("outcome") == "succeeded"


def evidence(data: Data) -> dict[str, Verdict]:
    """One verdict per evidence key used by the checklist."""
    dry = bool(data.get("dry_run"))
    pre = _checks(data, "prechecks")
    pre_failed = _statuses(pre, "FAIL")
    post = _checks(data, "postchecks")
    post_after = _checks(data, "postchecks_after_commit")
    mig = data.get("migration") or {}
    base = data.get("baseline") or {}
    cons = data.get("constraints") or {}
    cons_after = data.get("constraints_after_commit") or {}
    backup = _backup(data)
    services = data.get("services") or {}
    failure = data.get("failure")
    e: dict[str, Verdict] = {}

    # -- pre-flight -----------------------------------------------------------------------------------------------
    for key in ("connectivity", "version", "db_size", "disk_space", "backup_storage"):
        e[f"preflight.{key}"] = _preflight(data, key)
    conn_item = _preflight_item(data, "connections")
    if conn_item is None:
        e["preflight.connections"] = _v("not_run", "not measured: " + _why_not(data, "pre-flight"))
    else:
        e["preflight.connections"] = _ok(
            conn_item["status"] == "PASS",
            f"other sessions on this database: {conn_item['measured']}",
            f"other sessions on this database: {conn_item['measured']}"
            + (f" ({conn_item['detail']})" if conn_item.get("detail") else ""),
        )
    for key, item_key in (
        ("preflight.estimate", "estimate"),
        ("preflight.clients", "clients"),
        ("preflight.db_stats", "db_stats"),
    ):
        item = _preflight_item(data, item_key)
        e[key] = _v(
            "info",
            (item["measured"] + (f" ({item['detail']})" if item.get("detail") else "")) if item else "not measured",
        )
    deps = [_preflight_item(data, k) for k in ("dependents", "domain_id_code")]
    e["preflight.domain_id_dependents"] = _v(
        "info",
        "; ".join(f"{d['title']}: {d['measured']}" for d in deps if d)
        + ". Code outside the database (services, scripts, dashboards) was not searched.",
    )

    # -- services -------------------------------------------------------------------------------------------------
    stop = services.get("stop")
    e["services.stop_command"] = _v(
        "info",
        f"ran `{stop['command']}`: exit {stop['exit_code']} in {stop['duration_s']:.1f} s"
        if stop
        else "no --stop-command: services were stopped by hand (or not at all); other consumers are yours to stop",
    )
    start = services.get("start")
    e["services.start_command"] = _v(
        "info",
        f"ran `{start['command']}`: exit {start['exit_code']} in {start['duration_s']:.1f} s"
        if start
        else "no --start-command: restart your services yourself"
        + ("" if _committed(data) else " (the database was not migrated)"),
    )
    e["services.start_output"] = _v(
        "info",
        f"last lines of `{start['command']}`: {start['output_tail'] or '(no output)'}"
        if start
        else "no --start-command",
    )
    tth = (data.get("smoke") or {}).get("time_to_healthy_s")
    e["services.startup_time"] = _v(
        "info", f"healthy {tth:.1f} s after the start command" if tth is not None else "not measured (no --api-url)"
    )
    gone = services.get("sessions_gone_s")
    at_migration = services.get("sessions_at_migration")
    if conn_item is None:
        e["services.stopped"] = _v("not_run", "not checked: " + _why_not(data, "pre-flight"))
    elif conn_item["status"] == "PASS":
        e["services.stopped"] = _v(
            "pass",
            (f"after --stop-command, every other session was gone within {gone:.1f} s; " if gone is not None else "")
            + "no other session on the database at pre-flight",
        )
    else:
        e["services.stopped"] = _v("fail", f"sessions still connected: {conn_item['measured']}")
    if at_migration is None:
        e["services.quiesced"] = _v("not_run", "the migration did not start: " + _why_not(data, "migration"))
    else:
        e["services.quiesced"] = _ok(
            not at_migration,
            "no other session (so no in-flight request) on the database when the migration transaction began",
            f"{len(at_migration)} session(s) still there when the migration began (allowed by --allow-connections): "
            + "; ".join(at_migration),
        )
    e["services.healthy"] = _services_healthy(data)
    post_failed = failure is not None and failure.get("step") in ("post-verification", "constraint tests")
    e["services.not_restarted_on_failure"] = _v(
        "pass",
        "the verification failed and --start-command was not run"
        if post_failed and not start
        else "branch not taken: verification did not fail (the runbook never runs --start-command after a failure)",
    )

    # -- pre-migration checks -------------------------------------------------------------------------------------
    pre_run = data.get("prechecks")
    if pre_run:
        c = {s: len(_statuses(pre, s)) for s in ("PASS", "FAIL", "WARN", "INFO")}
        summary = f"{len(pre)} checks: {c['PASS']} PASS, {c['FAIL']} FAIL, {c['WARN']} WARN, {c['INFO']} INFO"
        e["prechecks.run"] = _v("pass", f"ran {pre_run['script']} (sha256 {pre_run['checksum'][:16]}…): {summary}")
        e["prechecks.passed"] = _ok(
            not pre_failed,
            f"all checks passed ({summary})",
            "failed: " + "; ".join(f"{r['check_id']} {r['title']}: {r['measured']}" for r in pre_failed),
        )
        warns = _statuses(pre, "WARN")
        e["prechecks.warnings"] = _v(
            "pass", "; ".join(f"{r['check_id']} {r['title']}: {r['measured']}" for r in warns) or "no warnings"
        )
        e["prechecks.branch"] = _v(
            "pass",
            f"evaluated: {len(pre_failed)} check(s) failed → the run stopped"
            if pre_failed
            else "evaluated: no check failed → the run went on",
        )
        e["prechecks.stop"] = _v(
            "pass",
            "stopped before the backup and the migration: nothing was changed"
            if pre_failed
            else "not needed (no check failed); the gate stops the run before anything changes when one does",
        )
        e["prechecks.output"] = _v("info", summary + " — every check with its measured value is in the report")
        remedies = [f"{r['check_id']}: {r['remedy']}" for r in pre_failed if r.get("remedy")]
        applied = data.get("remedies") or {}
        e["prechecks.remedies"] = _v(
            "info",
            ("remedies named by the failed checks: " + "; ".join(remedies))
            if remedies
            else "no failed check; remedies applied: " + _remedies_summary(applied),
        )
        e["scripts.pre"] = _v("pass", f"{pre_run['script']}, sha256 {pre_run['checksum']}")
    else:
        for key in ("prechecks.run", "prechecks.passed", "prechecks.warnings", "prechecks.branch", "prechecks.stop"):
            e[key] = _v("not_run", "the pre-migration checks did not run: " + _why_not(data, "pre-migration checks"))
        e["prechecks.output"] = e["prechecks.remedies"] = _v("info", "the pre-migration checks did not run")
        e["scripts.pre"] = _v("not_run", "the pre-migration checks did not run")
    post_run = data.get("postchecks")
    e["scripts.post"] = (
        _v("pass", f"{post_run['script']}, sha256 {post_run['checksum']}")
        if post_run
        else _v("not_run", "the post-migration verification did not run: " + _why_not(data, "post-verification"))
    )

    # -- baseline -------------------------------------------------------------------------------------------------
    before = base.get("before") or {}
    after = base.get("after") or {}
    after_commit = base.get("counts_after_commit") or {}
    if before:
        sizes = (data.get("preflight") or {}).get("tables") or {}
        e["baseline.captured"] = _v(
            "pass",
            "rows and content checksums of the 8 tables before the migration, in its transaction: "
            + ", ".join(f"{t} {s['rows']}" for t, s in before.items())
            + (f"; sizes and indexes at pre-flight: {len(sizes)} tables measured" if sizes else ""),
        )
    else:
        e["baseline.captured"] = _v("not_run", "no baseline: " + _why_not(data, "migration"))
    diffs = list(base.get("differences") or []) + list(base.get("differences_after_commit") or [])
    if before and after:
        label = "before and after the migration" + (" (row counts again after COMMIT)" if after_commit else "")
        e["baseline.intact"] = _ok(
            not diffs,
            f"every table has the same rows and content checksums {label}",
            "differences: " + "; ".join(diffs),
        )
        for table in ("decision_events", "verdict_events", "audit_timeline_entries"):
            b, a, rows_now = before.get(table), after.get(table), after_commit.get(table)
            same = bool(b and a and b["rows"] == a["rows"] and b["checksum"] == a["checksum"])
            committed = "" if rows_now is None else f", {rows_now} after COMMIT"
            e[f"baseline.{table}"] = _ok(
                same and (rows_now is None or rows_now == (b or {}).get("rows")),
                f"{b['rows'] if b else '?'} rows before, {a['rows'] if a else '?'} after{committed}, same content checksum",
                f"{b['rows'] if b else '?'} rows before, {a['rows'] if a else '?'} after{committed}"
                + ("" if same else ", content changed"),
            )
    else:
        e["baseline.intact"] = _v("not_run", "not compared: " + _why_not(data, "post-verification"))
        for table in ("decision_events", "verdict_events", "audit_timeline_entries"):
            e[f"baseline.{table}"] = e["baseline.intact"]

    # -- backup ---------------------------------------------------------------------------------------------------
    if backup:
        ver = backup.get("verification") or {}
        e["backup.created"] = _v(
            "pass",
            f"pg_dump -Fc → {backup['path']} ({backup['size']} bytes, sha256 {backup['sha256']}) in "
            f"{backup['dump_s']:.1f} s with {backup['tool']}",
        )
        e["backup.verified"] = _ok(
            bool(ver.get("ok")),
            f"archive read to the end by pg_restore, its table of contents names all {len(ver.get('tables_expected') or [])} "
            f"tables of schema mandate with their data, sha256 re-computed {ver.get('sha256', '')[:16]}…",
            "NOT verified: " + "; ".join(_verification_problems(ver)),
        )
        e["backup.read"] = e["backup.verified"]
        e["backup.location"] = _v("pass", f"{backup['path']} (manifest {backup['path']}.json)")
        copies = backup.get("copies") or []
        e["backup.copy"] = _v(
            "info",
            "; ".join(f"copied to {c['path']}, sha256 verified identical" for c in copies)
            if copies
            else "one location only (no --backup-copy-to); off-site storage is your policy",
        )
        e["backup.archived"] = _ok(
            bool(ver.get("ok")),
            f"archived in {Path(backup['path']).parent} with its manifest (size, sha256)"
            + (f" and copied to {len(copies)} other location(s), hash verified" if copies else ""),
            "the backup is not verified",
        )
    else:
        reason = (
            "dry run without --backup: no backup taken (a rehearsal changes nothing)"
            if dry
            else "no backup: " + _why_not(data, "backup")
        )
        for key in ("backup.created", "backup.verified", "backup.read", "backup.location", "backup.archived"):
            e[key] = _v("not_run", reason)
        e["backup.copy"] = _v("info", reason)
    restore_cmd = data.get("restore_command")
    e["backup.restore_command"] = _v(
        "info",
        f"restore with: `{restore_cmd}` — {_PSQL_NOTE}" if restore_cmd else "no backup was taken in this run",
    )
    rt = data.get("restore_test")
    if rt:
        e["backup.restore_test"] = _ok(
            bool(rt.get("passed")),
            f"restored into scratch database {rt['database']} in {rt['duration_s']:.1f} s: {rt['summary']}",
            f"restore test failed: {rt['summary']}",
        )
    else:
        e["backup.restore_test"] = _v(
            "not_run",
            "not run: pass --verify-restore to restore the backup into a scratch database and compare it with the "
            "baseline (or run `mandate backup restore FILE --into-new-database NAME` on a staging server)",
        )
    e["backup.previous"] = _v("info", data.get("previous_backup") or "no earlier backup found in the backup folder")

    # -- migration ------------------------------------------------------------------------------------------------
    started = mig.get("started_at")
    error = mig.get("error")
    e["migration.started"] = (
        _v("pass", f"started {started} ({', '.join(mig.get('applied') or []) or 'migration 008'})")
        if started
        else _v("not_run", "the migration did not start: " + _why_not(data, "migration"))
    )
    phases = data.get("phases") or []
    e["migration.progress"] = (
        _v(
            "pass",
            f"{len(phases)} phase(s) timed from 008's NOTICEs, live display and log: "
            + ", ".join(f"{p['number']}/{p['of']} {p['duration_s']:.2f} s" for p in phases),
        )
        if phases
        else _v("not_run", "no phase was reached")
    )
    if started:
        e["migration.errors"] = _ok(
            not error, "no SQL error", f"error: {error} (SQLSTATE {mig.get('sqlstate') or '?'})"
        )
        e["migration.branch"] = _v(
            "pass",
            "evaluated: an error occurred → stopped and rolled back" if error else "evaluated: no error occurred",
        )
        e["migration.error_message"] = _v(
            "pass",
            f"{error} (SQLSTATE {mig.get('sqlstate') or '?'}, during {mig.get('phase_at_error') or 'the transaction'})"
            if error
            else "no error to note",
        )
        e["migration.stopped_on_error"] = _v(
            "pass",
            "stopped at the error; the single transaction was rolled back, the database is unchanged"
            if error
            else "one transaction: any error stops it and rolls everything back (none occurred)",
        )
        e["migration.diagnostics"] = _v(
            "info",
            f"SQLSTATE {mig.get('sqlstate')}, phase {mig.get('phase_at_error')}: {error}" if error else "no error",
        )
        if dry:
            e["migration.begin_commit"] = _v("not_run", "dry run: BEGIN → ROLLBACK by design (a rehearsal)")
        else:
            e["migration.begin_commit"] = _ok(
                _committed(data),
                f"BEGIN at {started} → COMMIT at {mig.get('committed_at')}",
                "BEGIN → ROLLBACK: " + (error or (failure or {}).get("message", "")),
            )
    else:
        reason = "the migration did not start: " + _why_not(data, "migration")
        for key in ("migration.errors", "migration.branch", "migration.error_message", "migration.stopped_on_error"):
            e[key] = _v("not_run", reason)
        e["migration.begin_commit"] = _v("not_run", reason)
        e["migration.diagnostics"] = _v("info", reason)
    completed = _committed(data) and bool(post) and not _statuses(post, "FAIL") and not diffs
    e["migration.completed"] = (
        _v("not_run", "dry run: rehearsed completely, then rolled back")
        if dry and data.get("outcome") == "rehearsed"
        else _ok(
            completed, "committed, verified before and after COMMIT", "not completed: " + _why_not(data, "migration")
        )
    )
    log = data.get("migration_log")
    e["migration_log.row"] = (
        _v(
            "pass" if not dry else "info",
            f"migration_log version {log['migration_version']} {log['name']}: checksum {str(log['checksum'])[:16]}…, "
            f"{log['duration_ms']} ms, by {log['applied_by']} with {log['tool_version']}"
            + (
                f", remedies recorded: {_remedies_summary(log['details'].get('remedies') or {})}"
                if log.get("details")
                else ""
            )
            + (" (dry run: written, read back, rolled back)" if dry else ""),
        )
        if log
        else _v("not_run", "no migration_log row: " + _why_not(data, "migration"))
    )
    if dry and log:
        e["migration_log.row"]["status"] = "not_run"

    # -- post-verification ----------------------------------------------------------------------------------------
    if post:
        failed_post = _statuses(post, "FAIL") + _statuses(post_after, "FAIL")
        runs = "before COMMIT" + (" and after COMMIT" if post_after else "")
        e["post.run"] = _v("pass", f"ran {data['postchecks']['script']} {runs}: {len(post)} checks")
        e["post.passed"] = _ok(
            not failed_post and not diffs,
            f"all {len(post)} checks passed {runs}; rows and content unchanged",
            "failed: "
            + "; ".join(f"{r['check_id']} {r['title']}: {r['measured']}" for r in failed_post)
            + "; ".join(diffs),
        )
        e["post.output"] = _v("info", f"{len(post)} checks with their measured values are in the report")
    else:
        reason = "the post-migration verification did not run: " + _why_not(data, "post-verification")
        e["post.run"] = e["post.passed"] = _v("not_run", reason)
        e["post.output"] = _v("info", reason)
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
    e["post.confirmed"] = _ok(
        all(e[k]["status"] == "pass" for k in sub),
        "all eight confirmations below hold",
        "not all confirmed: " + ", ".join(k for k in sub if e[k]["status"] != "pass"),
    )
    analyze = data.get("analyze")
    e["post.analyze"] = (
        _v("pass", f"ANALYZE of {len(analyze['tables'])} tables in {analyze['duration_s']:.2f} s after COMMIT")
        if analyze
        else _v("not_run", "not run: " + ("dry run" if dry else _why_not(data, "ANALYZE")))
    )
    e["post.explain"] = _v(
        "info",
        f"plan of the domain-scoped decisions query: {data['explain']}" if data.get("explain") else "not captured",
    )

    # -- constraint tests -----------------------------------------------------------------------------------------
    for key in ("slug", "prefix", "valid"):
        tests = [t for run in (cons, cons_after) for t in run.get("tests") or [] if t["key"] == key]
        if not tests:
            e[f"constraints.{key}"] = _v(
                "not_run", "constraint tests did not run: " + _why_not(data, "constraint tests")
            )
            continue
        ok = all(t["passed"] for t in tests) and not cons.get("leftovers") and not cons_after.get("leftovers")
        t = tests[-1]
        when = "before and after COMMIT" if len(tests) > 1 else "before COMMIT"
        e[f"constraints.{key}"] = _ok(
            ok,
            f"`{t['statement']}` → {t['outcome']} ({when}; rolled back, no test row left)",
            f"`{t['statement']}` → {t['outcome']}; expected {t['expected']}",
        )

    # -- smoke ----------------------------------------------------------------------------------------------------
    for key in ("health", "decisions", "verdicts", "domain"):
        e[f"smoke.{key}"] = _smoke(data, key)
    smoke = data.get("smoke") or {}
    if smoke.get("tests"):
        e["smoke.all"] = _ok(
            bool(smoke.get("passed")),
            f"all 4 smoke tests passed against {smoke['target']}",
            f"{sum(1 for t in smoke['tests'] if not t['passed'])} smoke test(s) failed",
        )
        e["smoke.errors"] = _v("info", f"{sum(1 for t in smoke['tests'] if not t['passed'])} error(s) in the smoke run")
        e["smoke.configured"] = _v(
            "pass", "the runbook's health check and smoke tests: " + ", ".join(t["url"] for t in smoke["tests"])
        )
    else:
        reason = smoke.get("skipped") or _why_not(data, "smoke tests")
        e["smoke.all"] = _v("not_run", f"not run: {reason}")
        e["smoke.errors"] = _v("info", f"not run: {reason}")
        e["smoke.configured"] = _v(
            "pass", "prepared: GET /api/health, /api/decisions, /api/verdicts, /api/decisions?domain=<a real domain>"
        )
    e["smoke.endpoints"] = _v(
        "info",
        "Mandate's own API: /api/health, /api/decisions, /api/verdicts (and /api/v1/…); domain ids are slugs and "
        "scope ids human-readable after 008; other consumers of the database are unknown to the runbook",
    )

    # -- rehearsal (testing on staging) ---------------------------------------------------------------------------
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
            e[key] = _v(source["status"], f"this dry run (a rehearsal): {source['text']}")
        elif rehearsal:
            ok = bool((rehearsal.get("checks") or {}).get(part))
            where = (
                f"the {'dry run' if rehearsal['dry_run'] else 'run'} of {rehearsal['when']} on {rehearsal['database']}"
            )
            e[key] = _ok(ok, f"{where}: passed", f"{where}: did not pass")
        else:
            e[key] = _v(
                "not_run", "no rehearsal recorded: run `mandate migrate run 008 --dry-run` on a staging copy first"
            )
    e["rehearsal.findings"] = _v(
        "info",
        "warnings of this run: " + ("; ".join(data.get("warnings") or []) or "none"),
    )

    # -- the run as a whole ---------------------------------------------------------------------------------------
    steps = data.get("steps") or []
    e["run.timeline"] = _v(
        "pass",
        f"every step timestamped (log {data.get('log_path')}): "
        + ", ".join(f"{s['name']} {s['started_at']}" for s in steps),
    )
    total = data.get("duration_s")
    est = (data.get("estimate") or {}).get("total_s")
    e["run.total_runtime"] = (
        _v("pass", f"{total:.1f} s in total" + (f" (estimated {est:.1f} s)" if est is not None else ""))
        if total is not None
        else _v("not_run", "the run did not finish")
    )
    e["run.no_errors"] = _ok(
        failure is None,
        "no error during the run",
        f"error in {failure['step']}: {failure['message'][:300]}" if failure else "",
    )
    report_paths = data.get("report_paths") or {}
    e["run.report"] = _v("pass", f"this report: {report_paths.get('markdown')} and {report_paths.get('json')}")
    e["run.artifacts"] = _v(
        "pass",
        f"in {data.get('run_dir')}: " + ", ".join(Path(p).name for p in data.get("artifacts") or []),
    )
    e["run.metrics"] = _ok(
        total is not None and e["baseline.intact"]["status"] == "pass",
        "total runtime, data integrity, errors and service health are documented in this report",
        "not all final metrics are available: " + _why_not(data, "the run"),
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
    e["run.all_checks"] = _ok(
        all_ok and failure is None,
        "pre-flight, pre-checks, post-verification, baseline, constraint and smoke tests all passed",
        "not all passed: " + ", ".join(k for k in a_keys if e[k]["status"] != "pass"),
    )
    e["run.success"] = _ok(
        _run_success(data) and all_ok,
        "migrated, verified before and after COMMIT, constraint and smoke tests passed",
        "not successful: " + (failure["message"][:200] if failure else ("dry run (rehearsal)" if dry else "see above")),
    )
    e["logs"] = _v(
        "info",
        f"your services' logs were not scanned (the runbook cannot see them); the run's own log is {data.get('log_path')}",
    )
    e["plan.phases"] = _v(
        "info",
        "008 runs in 10 phases (the checklist's '13' refers to the original script): "
        + "; ".join(data.get("phase_plan") or []),
    )
    e["none"] = _v("info", "outside what the runbook can see or do")
    return e


def _remedies_summary(remedies: dict[str, Any]) -> str:
    parts = []
    if remedies.get("domain_slugs"):
        parts.append("domain slugs " + ", ".join(f"{r['name']!r}→{r['slug']}" for r in remedies["domain_slugs"]))
    if remedies.get("scope_ids"):
        parts.append(f"{len(remedies['scope_ids'])} scope id(s) from the map")
    if remedies.get("unattributed_to"):
        u = remedies["unattributed_to"]
        parts.append(f"unattributed history → {u['organization_id']}/{u['domain']}")
    return "; ".join(parts) or "none"


def _verification_problems(ver: dict[str, Any]) -> list[str]:
    problems = []
    if not ver.get("full_read"):
        problems.append(f"cannot be read to the end: {ver.get('full_read_error')}")
    if ver.get("tables_missing"):
        problems.append("tables missing: " + ", ".join(ver["tables_missing"]))
    if ver.get("manifest_sha256") and ver.get("manifest_sha256") != ver.get("sha256"):
        problems.append("SHA-256 differs from the manifest")
    return problems or ["unknown"]


# ---------------------------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------------------------

_MARK = {"pass": "x", "fail": " ", "not_run": " ", "info": " "}
_LABEL = {"pass": "✔", "fail": "✘ NOT MET:", "not_run": "– not done:", "info": "ℹ"}


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def _secs(value: Any) -> str:
    return f"{float(value):.2f} s" if value is not None else ""


def _check_rows(results: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for r in results:
        sample = "; ".join(r.get("sample") or [])
        more = (r.get("offending_count") or 0) - len(r.get("sample") or [])
        if more > 0:
            sample += f"; … and {more} more"
        remedy = r.get("remedy") if r["status"] in ("FAIL", "WARN") else ""
        rows.append([r["check_id"], r["status"], r["title"], r.get("measured"), sample, remedy])
    return rows


def render(data: Data) -> str:
    e: dict[str, Verdict] = data.get("evidence") or evidence(data)
    out: list[str] = []
    add = out.append
    outcome = data.get("outcome", "unknown")
    title = {
        "succeeded": "SUCCEEDED",
        "rehearsed": "REHEARSED (dry run, rolled back)",
        "failed": "FAILED",
        "refused": "REFUSED (nothing was changed)",
    }.get(outcome, outcome.upper())
    add(f"# Migration 008 runbook report — {title}")
    add("")
    db = data.get("database") or {}
    add(f"- Database: `{db.get('name')}` on PostgreSQL {db.get('server_version')} (`{db.get('url')}`)")
    add(f"- Run: `{data.get('command')}` by {data.get('tool')}, run id `{data.get('run_id')}`")
    add(f"- Started {data.get('started_at')}, finished {data.get('finished_at')}, {_secs(data.get('duration_s'))}")
    add(f"- Mode: {'dry run (everything in one transaction, rolled back)' if data.get('dry_run') else 'real run'}")
    add(f"- Log: `{data.get('log_path')}`")
    resumed = data.get("resumed")
    if resumed:
        add(
            f"- Resumed: run `{resumed.get('run_id')}` committed the migration but stopped before its end; this run "
            "finished what it skipped (checks after COMMIT, ANALYZE, smoke tests, this report)"
        )
    for path in data.get("removed_partials") or []:
        add(f"- Removed the unfinished backup file of an interrupted run: `{path}`")
    add("")

    add("## Outcome")
    add("")
    failure = data.get("failure")
    if failure:
        add(f"**Failed at: {failure['step']}.** {failure['message']}")
        add("")
        add(
            f"Database changed: **{'yes — the migration was committed' if failure.get('database_changed') else 'no — everything was rolled back'}**."
        )
        add("")
        add("What to do next:")
        add("")
        for cmd in failure.get("next") or []:
            add(f"- {cmd}")
        add("")
    elif outcome == "succeeded":
        add("Migration 008 was applied, verified before and after COMMIT, and its constraint and smoke tests passed.")
        add("")
    elif outcome == "rehearsed":
        add("The whole migration ran inside one transaction and was rolled back: the database is exactly as before.")
        add("Timings below are real; use them for the maintenance window.")
        add("")
    for w in data.get("warnings") or []:
        add(f"- warning: {w}")
    if data.get("warnings"):
        add("")

    add("## Steps")
    add("")
    add_rows = [
        [s["name"], s["status"], s["started_at"], _secs(s["duration_s"]), s.get("summary")]
        for s in data.get("steps") or []
    ]
    out.extend(_table(["step", "status", "started (UTC)", "duration", "summary"], add_rows))

    est = data.get("estimate") or {}
    add("## 008 phases")
    add("")
    phase_est = est.get("phases") or {}
    out.extend(
        _table(
            ["phase", "title", "rows", "duration", "estimate"],
            [
                [
                    f"{p['number']}/{p['of']}",
                    p["title"],
                    p.get("rows"),
                    _secs(p["duration_s"]),
                    _secs(phase_est.get(str(p["number"]))),
                ]
                for p in data.get("phases") or []
            ]
            or [["—", "the migration did not start", "", "", ""]],
        )
    )
    add("## Estimate and actual")
    add("")
    actual = data.get("actual") or {}
    out.extend(
        _table(
            ["", "estimate", "actual"],
            [
                ["migration transaction", _secs(est.get("migration_s")), _secs(actual.get("migration_s"))],
                ["backup (dump + verification)", _secs(est.get("backup_s")), _secs(actual.get("backup_s"))],
                ["whole run", _secs(est.get("total_s")), _secs(data.get("duration_s"))],
            ],
        )
    )
    if est.get("basis"):
        add(f"Basis of the estimate: {est['basis']}.")
        add("")

    pre = data.get("preflight")
    if pre:
        add("## Pre-flight")
        add("")
        out.extend(
            _table(
                ["item", "status", "measured", "detail"],
                [[i["title"], i["status"], i["measured"], i.get("detail")] for i in pre["items"]],
            )
        )
        tables = pre.get("tables") or {}
        if tables:
            out.extend(
                _table(
                    ["table", "rows", "heap", "indexes", "total"],
                    [[t, v["rows"], v["heap"], v["indexes"], v["total"]] for t, v in tables.items()],
                )
            )
    for key, heading in (
        ("prechecks", "Pre-migration checks (the gate)"),
        ("prechecks_in_transaction", "Pre-migration checks again, inside the migration transaction"),
        ("postchecks", "Post-migration verification (before COMMIT)"),
        ("postchecks_after_commit", "Post-migration verification (after COMMIT)"),
    ):
        run = data.get(key)
        if run:
            add(f"## {heading}")
            add("")
            add(f"`{run['script']}` (sha256 `{run['checksum']}`), {_secs(run['duration_s'])}")
            add("")
            out.extend(
                _table(
                    ["check", "status", "title", "measured", "offending rows (first 10)", "remedy"],
                    _check_rows(run["results"]),
                )
            )

    remedies = data.get("remedies")
    add("## Operator remedies")
    add("")
    add(
        f"Given: {', '.join(data.get('remedy_sources') or []) or 'none'}. Used by 008 (recorded in migration_log.details): {_remedies_summary(remedies or {})}."
    )
    add("")

    base = data.get("baseline") or {}
    if base.get("before"):
        add("## Row counts and content checksums")
        add("")
        rows = []
        created = base.get("created_by_remedies") or {}
        for t, b in base["before"].items():
            a = (base.get("after") or {}).get(t) or {}
            c = (base.get("counts_after_commit") or {}).get(t)
            if not a and c is None:
                equal = "not counted (the run stopped before)"
            elif (not a or (a["rows"] == b["rows"] and a["checksum"] == b["checksum"])) and c in (None, b["rows"]):
                equal = "yes"
            else:
                equal = "**NO**"
            extra = created.get(t) or []
            rows.append(
                [
                    t,
                    b["rows"],
                    a.get("rows", ""),
                    "" if c is None else c,
                    b["checksum"],
                    a.get("checksum", ""),
                    equal,
                    f"+{len(extra)}: " + ", ".join(extra) if extra else "",
                ]
            )
        out.extend(
            _table(
                [
                    "table",
                    "rows before",
                    "rows after",
                    "after COMMIT",
                    "checksum before",
                    "checksum after",
                    "equal",
                    "created by remedies (not in the counts)",
                ],
                rows,
            )
        )

    backup = data.get("backup")
    add("## Backup")
    add("")
    if backup:
        ver = backup.get("verification") or {}
        add(f"- File: `{backup['path']}` ({backup['size']} bytes), manifest `{backup['path']}.json`")
        add(f"- SHA-256: `{backup['sha256']}`")
        add(
            f"- pg_dump: {_secs(backup['dump_s'])} with {backup['tool']}; verification {_secs(ver.get('duration_s'))}: "
            f"{'read to the end and complete' if ver.get('ok') else 'FAILED: ' + '; '.join(_verification_problems(ver))}"
        )
        for c in backup.get("copies") or []:
            add(f"- Copy: `{c['path']}`, SHA-256 verified identical")
        rt = data.get("restore_test")
        if rt:
            add(f"- Restore test: {rt['summary']}")
    else:
        add("No backup in this run" + (" (dry run)." if data.get("dry_run") else "."))
    add("")
    add("## How to restore")
    add("")
    if data.get("restore_command"):
        add(
            "Restore this backup into the same database (replaces schema `mandate` in one transaction; a failure changes nothing):"
        )
        add("")
        add("```")
        add(f"mandate backup restore {backup['path'] if backup else 'FILE'}")
        add("# which runs:")
        add(str(data["restore_command"]))
        add("```")
        add("")
        add(
            f"Note: {_PSQL_NOTE}. To inspect it without touching this database: "
            f"`mandate backup restore {backup['path'] if backup else 'FILE'} --into-new-database NAME`."
        )
    else:
        add("No backup was taken in this run; nothing to restore (a dry run or a refused run changes nothing).")
    add("")

    cons = data.get("constraints")
    if cons:
        add("## Constraint tests (T+60), in a rolled-back transaction")
        add("")
        rows = []
        for label, run in (("before COMMIT", cons), ("after COMMIT", data.get("constraints_after_commit"))):
            for t in (run or {}).get("tests") or []:
                rows.append(
                    [
                        label,
                        t["title"],
                        f"`{t['statement']}`",
                        t["expected"],
                        t["outcome"],
                        "PASS" if t["passed"] else "FAIL",
                    ]
                )
        out.extend(_table(["when", "test", "statement", "expected", "outcome", "result"], rows))
        add(
            f"Organization used: {cons['organization']}; created for the test and rolled back: {', '.join(cons['throwaway']) or 'nothing'}; test rows left afterwards: {cons['leftovers']}."
        )
        add("")

    smoke = data.get("smoke") or {}
    add("## Smoke tests (T+80–100)")
    add("")
    if smoke.get("tests"):
        add(
            f"Against {smoke['target']}{' (Mandate API in-process on the migrated database)' if smoke['in_process'] else ''}."
        )
        add("")
        out.extend(
            _table(
                ["test", "request", "status", "result", "detail", "time"],
                [
                    [
                        t["key"],
                        t["url"],
                        t["status_code"],
                        "PASS" if t["passed"] else "FAIL",
                        t["detail"],
                        f"{t['elapsed_ms']:.0f} ms",
                    ]
                    for t in smoke["tests"]
                ],
            )
        )
    else:
        add(f"Not run: {smoke.get('skipped') or _why_not(data, 'smoke tests')}.")
        add("")

    log = data.get("migration_log")
    if log:
        add("## migration_log entry")
        add("")
        add("```json")
        add(json.dumps(log, indent=1, default=str))
        add("```")
        add("")

    add("## The checklist")
    add("")
    add(_checklist_summary(e))
    add("")
    out.extend(_checklist_lines(e))
    add("")
    add("## Artifacts")
    add("")
    for p in data.get("artifacts") or []:
        add(f"- `{p}`")
    add("")
    return "\n".join(out)


def _checklist_summary(e: dict[str, Verdict]) -> str:
    items = checklist.items()
    main = [i for i in items if i.kind == "item"]
    ticked = sum(1 for i in main if i.cls == "A" and e.get(i.evidence or "", {}).get("status") == "pass")
    t = checklist.totals()
    tt = checklist.totals("troubleshooting")
    return (
        f"{checklist.source()}: {len(main)} items — A {t['A']} (machine, {ticked} ticked by this run), "
        f"P {t['P']} (machine-supported, a person judges), H {t['H']} (people); plus "
        f"{sum(tt.values())} troubleshooting boxes (A {tt['A']}, P {tt['P']}, H {tt['H']}). "
        "`[x]` = done with evidence; `[ ]` = not ticked, with why."
    )


def _checklist_lines(e: dict[str, Verdict]) -> list[str]:
    out: list[str] = []
    current: tuple[str, ...] = ()
    for item in checklist.items():
        if item.section != current:
            common = 0
            while common < min(len(current), len(item.section)) and current[common] == item.section[common]:
                common += 1
            for level in range(common, len(item.section)):
                if out and out[-1] != "":
                    out.append("")
                out.append("#" * (level + 3) + " " + item.section[level])
                out.append("")
            current = item.section
        indent = "  " * item.depth
        box = f"{item.number}. [{{}}]" if item.number is not None else "- [{}]"
        if item.cls == "H":
            out.append(f"{indent}{box.format(' ')} {item.text} — **H**, for people (L{item.line})")
            continue
        verdict = e.get(item.evidence or "") or _v("not_run", "no evidence recorded")
        mark = _MARK[verdict["status"]] if item.cls == "A" else " "
        if item.cls == "A":
            tail = f"— **A** {_LABEL[verdict['status']]} {verdict['text']}"
        else:
            tail = f"— **P**, for a person to judge; the runbook: {verdict['text']}"
            if item.note:
                tail += f" ({item.note})"
        out.append(f"{indent}{box.format(mark)} {item.text} {tail} (L{item.line})")
    return out


def write(data: Data, markdown: Path, json_path: Path) -> None:
    data["evidence"] = evidence(data)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
    markdown.write_text(render(data), encoding="utf-8")


def load(json_path: Path) -> Data:
    loaded: Data = json.loads(json_path.read_text(encoding="utf-8"))
    if loaded.get("format") != FORMAT:
        raise ValueError(f"{json_path} is not a runbook report (format {loaded.get('format')!r})")
    return loaded
