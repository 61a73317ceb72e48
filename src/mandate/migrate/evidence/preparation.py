"""Evidence of the preparation: the pre-flight, the operator's services, the pre-migration checks (the gate) and
the verified backup — one function per checklist section, each adding its findings to the evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mandate.migrate.record import (
    PSQL_NOTE,
    Data,
    Evidence,
    Finding,
    check_results,
    committed,
    finding,
    pass_or_fail,
    preflight_item,
    remedies_summary,
    verification_problems,
    why_not,
    with_status,
)


def _preflight(data: Data, key: str, pass_on: tuple[str, ...] = ("PASS", "INFO")) -> Finding:
    item = preflight_item(data, key)
    if item is None:
        return finding("not_run", "pre-flight did not measure it: " + why_not(data, "pre-flight"))
    text = item["measured"] + (f" — {item['detail']}" if item.get("detail") else "")
    return finding("pass" if item["status"] in pass_on else "fail", text)


def _services_healthy(data: Data) -> Finding:
    services = data.get("services") or {}
    smoke = data.get("smoke") or {}
    if data.get("dry_run"):
        return finding("not_run", "dry run: services are not restarted (the database was rolled back)")
    if smoke.get("in_process") is False and smoke.get("time_to_healthy_s") is not None:
        health = next((t for t in smoke.get("tests") or [] if t["key"] == "health"), None)
        ok = health is not None and health["passed"]
        return pass_or_fail(
            ok,
            f"{smoke['target']}/api/health answered healthy {smoke['time_to_healthy_s']:.1f} s after the restart"
            + (" (--start-command)" if services.get("start") else ""),
            f"{smoke['target']}/api/health: {health['detail'] if health else 'not checked'}",
        )
    if smoke.get("in_process"):
        return finding(
            "not_run",
            "no --api-url: Mandate's API was started in-process on the migrated database and answered healthy, "
            "but your deployed services were not checked; give --api-url (and --start-command) to check them",
        )
    return finding("not_run", "services were not checked: " + why_not(data, "smoke tests"))


def of_preflight(data: Data, e: Evidence) -> None:
    """The pre-flight: what it measured, and the sessions on the database."""
    for key in ("connectivity", "version", "db_size", "disk_space", "backup_storage"):
        e[f"preflight.{key}"] = _preflight(data, key)
    conn_item = preflight_item(data, "connections")
    if conn_item is None:
        e["preflight.connections"] = finding("not_run", "not measured: " + why_not(data, "pre-flight"))
    else:
        e["preflight.connections"] = pass_or_fail(
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
        item = preflight_item(data, item_key)
        e[key] = finding(
            "info",
            (item["measured"] + (f" ({item['detail']})" if item.get("detail") else "")) if item else "not measured",
        )
    deps = [preflight_item(data, k) for k in ("dependents", "domain_id_code")]
    e["preflight.domain_id_dependents"] = finding(
        "info",
        "; ".join(f"{d['title']}: {d['measured']}" for d in deps if d)
        + ". Code outside the database (services, scripts, dashboards) was not searched.",
    )


def of_services(data: Data, e: Evidence) -> None:
    """The operator's services: stopped, quiesced, started again, healthy."""
    services = data.get("services") or {}
    failure = data.get("failure")
    conn_item = preflight_item(data, "connections")
    stop = services.get("stop")
    e["services.stop_command"] = finding(
        "info",
        f"ran `{stop['command']}`: exit {stop['exit_code']} in {stop['duration_s']:.1f} s"
        if stop
        else "no --stop-command: services were stopped by hand (or not at all); other consumers are yours to stop",
    )
    start = services.get("start")
    e["services.start_command"] = finding(
        "info",
        f"ran `{start['command']}`: exit {start['exit_code']} in {start['duration_s']:.1f} s"
        if start
        else "no --start-command: restart your services yourself"
        + ("" if committed(data) else " (the database was not migrated)"),
    )
    e["services.start_output"] = finding(
        "info",
        f"last lines of `{start['command']}`: {start['output_tail'] or '(no output)'}"
        if start
        else "no --start-command",
    )
    tth = (data.get("smoke") or {}).get("time_to_healthy_s")
    e["services.startup_time"] = finding(
        "info", f"healthy {tth:.1f} s after the start command" if tth is not None else "not measured (no --api-url)"
    )
    gone = services.get("sessions_gone_s")
    at_migration = services.get("sessions_at_migration")
    if conn_item is None:
        e["services.stopped"] = finding("not_run", "not checked: " + why_not(data, "pre-flight"))
    elif conn_item["status"] == "PASS":
        e["services.stopped"] = finding(
            "pass",
            (f"after --stop-command, every other session was gone within {gone:.1f} s; " if gone is not None else "")
            + "no other session on the database at pre-flight",
        )
    else:
        e["services.stopped"] = finding("fail", f"sessions still connected: {conn_item['measured']}")
    if at_migration is None:
        e["services.quiesced"] = finding("not_run", "the migration did not start: " + why_not(data, "migration"))
    else:
        e["services.quiesced"] = pass_or_fail(
            not at_migration,
            "no other session (so no in-flight request) on the database when the migration transaction began",
            f"{len(at_migration)} session(s) still there when the migration began (allowed by --allow-connections): "
            + "; ".join(at_migration),
        )
    e["services.healthy"] = _services_healthy(data)
    post_failed = failure is not None and failure.get("step") in ("post-verification", "constraint tests")
    e["services.not_restarted_on_failure"] = finding(
        "pass",
        "the verification failed and --start-command was not run"
        if post_failed and not start
        else "branch not taken: verification did not fail (the runbook never runs --start-command after a failure)",
    )


def of_prechecks(data: Data, e: Evidence) -> None:
    """The pre-migration checks (the gate) and the scripts run."""
    pre = check_results(data, "prechecks")
    pre_failed = with_status(pre, "FAIL")
    pre_run = data.get("prechecks")
    if pre_run:
        c = {s: len(with_status(pre, s)) for s in ("PASS", "FAIL", "WARN", "INFO")}
        summary = f"{len(pre)} checks: {c['PASS']} PASS, {c['FAIL']} FAIL, {c['WARN']} WARN, {c['INFO']} INFO"
        e["prechecks.run"] = finding("pass", f"ran {pre_run['script']} (sha256 {pre_run['checksum'][:16]}…): {summary}")
        e["prechecks.passed"] = pass_or_fail(
            not pre_failed,
            f"all checks passed ({summary})",
            "failed: " + "; ".join(f"{r['check_id']} {r['title']}: {r['measured']}" for r in pre_failed),
        )
        warns = with_status(pre, "WARN")
        e["prechecks.warnings"] = finding(
            "pass", "; ".join(f"{r['check_id']} {r['title']}: {r['measured']}" for r in warns) or "no warnings"
        )
        e["prechecks.branch"] = finding(
            "pass",
            f"evaluated: {len(pre_failed)} check(s) failed → the run stopped"
            if pre_failed
            else "evaluated: no check failed → the run went on",
        )
        e["prechecks.stop"] = finding(
            "pass",
            "stopped before the backup and the migration: nothing was changed"
            if pre_failed
            else "not needed (no check failed); the gate stops the run before anything changes when one does",
        )
        e["prechecks.output"] = finding("info", summary + " — every check with its measured value is in the report")
        remedies = [f"{r['check_id']}: {r['remedy']}" for r in pre_failed if r.get("remedy")]
        applied = data.get("remedies") or {}
        e["prechecks.remedies"] = finding(
            "info",
            ("remedies named by the failed checks: " + "; ".join(remedies))
            if remedies
            else "no failed check; remedies applied: " + remedies_summary(applied),
        )
        e["scripts.pre"] = finding("pass", f"{pre_run['script']}, sha256 {pre_run['checksum']}")
    else:
        for key in ("prechecks.run", "prechecks.passed", "prechecks.warnings", "prechecks.branch", "prechecks.stop"):
            e[key] = finding(
                "not_run", "the pre-migration checks did not run: " + why_not(data, "pre-migration checks")
            )
        e["prechecks.output"] = e["prechecks.remedies"] = finding("info", "the pre-migration checks did not run")
        e["scripts.pre"] = finding("not_run", "the pre-migration checks did not run")
    post_run = data.get("postchecks")
    e["scripts.post"] = (
        finding("pass", f"{post_run['script']}, sha256 {post_run['checksum']}")
        if post_run
        else finding("not_run", "the post-migration verification did not run: " + why_not(data, "post-verification"))
    )


def of_backup(data: Data, e: Evidence) -> None:
    """The verified backup, its copies, its restore command and restore test."""
    dry = bool(data.get("dry_run"))
    backup: dict[str, Any] | None = data.get("backup")
    if backup:
        ver = backup.get("verification") or {}
        e["backup.created"] = finding(
            "pass",
            f"pg_dump -Fc → {backup['path']} ({backup['size']} bytes, sha256 {backup['sha256']}) in "
            f"{backup['dump_s']:.1f} s with {backup['tool']}",
        )
        e["backup.verified"] = pass_or_fail(
            bool(ver.get("ok")),
            f"archive read to the end by pg_restore, its table of contents names all {len(ver.get('tables_expected') or [])} "
            f"tables of schema mandate with their data, sha256 re-computed {ver.get('sha256', '')[:16]}…",
            "NOT verified: " + "; ".join(verification_problems(ver)),
        )
        e["backup.read"] = e["backup.verified"]
        e["backup.location"] = finding("pass", f"{backup['path']} (manifest {backup['path']}.json)")
        copies = backup.get("copies") or []
        e["backup.copy"] = finding(
            "info",
            "; ".join(f"copied to {c['path']}, sha256 verified identical" for c in copies)
            if copies
            else "one location only (no --backup-copy-to); off-site storage is your policy",
        )
        e["backup.archived"] = pass_or_fail(
            bool(ver.get("ok")),
            f"archived in {Path(backup['path']).parent} with its manifest (size, sha256)"
            + (f" and copied to {len(copies)} other location(s), hash verified" if copies else ""),
            "the backup is not verified",
        )
    else:
        reason = (
            "dry run without --backup: no backup taken (a rehearsal changes nothing)"
            if dry
            else "no backup: " + why_not(data, "backup")
        )
        for key in ("backup.created", "backup.verified", "backup.read", "backup.location", "backup.archived"):
            e[key] = finding("not_run", reason)
        e["backup.copy"] = finding("info", reason)
    restore_cmd = data.get("restore_command")
    e["backup.restore_command"] = finding(
        "info",
        f"restore with: `{restore_cmd}` — {PSQL_NOTE}" if restore_cmd else "no backup was taken in this run",
    )
    rt = data.get("restore_test")
    if rt:
        e["backup.restore_test"] = pass_or_fail(
            bool(rt.get("passed")),
            f"restored into scratch database {rt['database']} in {rt['duration_s']:.1f} s: {rt['summary']}",
            f"restore test failed: {rt['summary']}",
        )
    else:
        e["backup.restore_test"] = finding(
            "not_run",
            "not run: pass --verify-restore to restore the backup into a scratch database and compare it with the "
            "baseline (or run `mandate backup restore FILE --into-new-database NAME` on a staging server)",
        )
    e["backup.previous"] = finding(
        "info", data.get("previous_backup") or "no earlier backup found in the backup folder"
    )
