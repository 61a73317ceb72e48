"""`mandate migrate …` and `mandate backup …`: the migration runner, and the 008 runbook and its sub-steps."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mandate.config import check_duration
from mandate.console import out, settings
from mandate.db.connect import connect
from mandate.db.url import database_url
from mandate.errors import BackupError, CheckFailed, ConfigError, ReportedFailure
from mandate.migrate import backup as backups
from mandate.migrate import baseline, checks, constraints, preflight, runbook, runner, smoke
from mandate.migrate import report as reporting
from mandate.migrate.remedies import Remedies


def api_app(database_url: str) -> Any:
    """Mandate's API without authentication on `database_url`: the smoke tests' in-process service (loopback, for
    their duration). Imported here, not at the top: `mandate --help` should not load a web framework."""
    from mandate.web.app import create_app

    return create_app(database_url, auth=False)


migrate_app = typer.Typer(help="Apply and inspect schema migrations; run the 008 runbook.", no_args_is_help=True)
backup_app = typer.Typer(
    help="Create, verify and restore verified backups (pg_dump custom format).", no_args_is_help=True
)


@migrate_app.command("status")
def migrate_status() -> None:
    """List applied and pending migrations, and applied files whose checksum changed since."""
    cfg = settings()
    with connect(database_url(cfg), application="mandate migrate status") as conn:
        st = runner.status(conn)
    if st.state == "legacy":
        out.print(
            "[yellow]legacy Mandate database (no migration_log): `mandate migrate up` adopts 001–007 as baseline[/]"
        )
    table = Table("version", "name", "state", "checksum (sha256)", "applied at", "duration", "by", "tool")
    changed = {a.version for a, _ in st.changed}
    for a in st.applied:
        state = "baseline" if a.baseline else "applied"
        if a.version in changed:
            state = "[red]CHANGED since applied[/]"
        table.add_row(
            f"{a.version:03d}",
            a.name,
            state,
            (a.checksum or "—")[:16],
            f"{a.started_at:%Y-%m-%d %H:%M:%S}",
            f"{a.duration_ms:.0f} ms",
            a.applied_by,
            a.tool_version,
        )
    for f in st.pending:
        table.add_row(f"{f.version:03d}", f.name, "[yellow]pending[/]", f.checksum[:16], "", "", "", "")
    out.print(table)
    for a, f in st.changed:
        out.print(f"[red]{f.path.name} changed after it was applied: recorded {a.checksum}, file {f.checksum}[/]")
    for a in st.unknown:
        out.print(f"[yellow]migration {a.version:03d} ({a.name}) is applied but unknown to this version of Mandate[/]")
    for w in st.index_warnings:
        out.print(f"[yellow]index difference from the legacy schema: {w}[/]")
    out.print(f"schema version {st.current_version:03d}; {len(st.pending)} pending")
    if st.changed:
        raise ReportedFailure(f"{len(st.changed)} applied migration file(s) changed since they were applied")


@migrate_app.command("up")
def migrate_up(
    to: Annotated[int | None, typer.Option("--to", help="Stop after this version.")] = None,
    lock_timeout: Annotated[str | None, typer.Option(help="lock_timeout per migration, e.g. 10s.")] = None,
    statement_timeout: Annotated[
        str | None, typer.Option(help="statement_timeout per migration, e.g. 30min; 0 = none.")
    ] = None,
) -> None:
    """Apply pending migrations (one transaction each), recording each in migration_log."""
    cfg = settings()
    with connect(database_url(cfg), application="mandate migrate up") as conn:
        r = runner.Runner(
            conn,
            lock_wait_s=cfg.migration_lock_wait_s,
            lock_timeout=check_duration(lock_timeout or cfg.lock_timeout, "--lock-timeout"),
            statement_timeout=check_duration(statement_timeout or cfg.statement_timeout, "--statement-timeout"),
            progress=lambda m: out.print(f"  {m}"),
        )
        applied = r.up(to=to)
        version = runner.status(conn).current_version
    if applied:
        out.print(f"[green]applied {len(applied)} migration(s); schema version {version:03d}[/]")
    else:
        out.print(f"nothing to do: schema version {version:03d} is up to date")


# -- the 008 runbook and its sub-steps ------------------------------------------------------------------------------

_STATUS_STYLE = {"PASS": "green", "FAIL": "bold red", "WARN": "yellow", "INFO": "cyan"}

Version = Annotated[str, typer.Argument(help="The migration whose runbook to run: 008.", metavar="008")]
DomainSlugOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--domain-slug",
        help="Slug for a domain name that is not one: 'NAME=slug' (or 'ORG_ID:NAME=slug'); repeatable.",
    ),
]
DomainSlugFileOpt = Annotated[
    Path | None, typer.Option("--domain-slug-file", help="CSV (name,slug[,organization_id]) or YAML (NAME: slug).")
]
UnattributedOpt = Annotated[
    str | None, typer.Option("--unattributed-to", help="Where history without a domain goes: ORG_ID/DOMAIN.")
]
ScopeMapOpt = Annotated[
    Path | None,
    typer.Option("--scope-id-map", help="CSV (legacy_scope_uuid,scope_id) or YAML (uuid: scope id) of scope ids."),
]
BackupDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--backup-dir", help="Where the backup, the report and the log go.", show_default="$MANDATE_DATA_DIR/backups"
    ),
]


DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Do everything in one transaction and roll it back: a real rehearsal.")
]
WithBackupOpt = Annotated[bool, typer.Option("--backup", help="Take the verified backup in a dry run too.")]
BackupCopyToOpt = Annotated[
    Path | None, typer.Option("--backup-copy-to", help="Copy the backup to this folder too (hash verified).")
]
VerifyRestoreOpt = Annotated[
    bool, typer.Option("--verify-restore", help="Restore the backup into a scratch database and compare it (slower).")
]
RunApiUrlOpt = Annotated[
    str | None, typer.Option("--api-url", help="Smoke-test this running Mandate (e.g. http://localhost:3000).")
]
ReportOpt = Annotated[Path | None, typer.Option("--report", help="Markdown report path (JSON and log next to it).")]
RunAllowConnectionsOpt = Annotated[
    bool, typer.Option("--allow-connections", help="Go on although other sessions are connected.")
]
RunLockTimeoutOpt = Annotated[
    str | None, typer.Option("--lock-timeout", help="Wait this long for the table locks, e.g. 10s.")
]
LockRetriesOpt = Annotated[int, typer.Option("--lock-retries", min=1, help="Attempts to lock the tables.")]
RunStatementTimeoutOpt = Annotated[
    str | None, typer.Option("--statement-timeout", help="statement_timeout in the migration, e.g. 30min; 0 = none.")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation before migrating.")]
StopCommandOpt = Annotated[
    str | None, typer.Option("--stop-command", help="Shell command that stops the services (run first).")
]
StartCommandOpt = Annotated[
    str | None, typer.Option("--start-command", help="Shell command that starts them again after success.")
]
StopWaitOpt = Annotated[
    float, typer.Option("--stop-wait", min=0, help="Seconds to wait for sessions to end after --stop-command.")
]
StartWaitOpt = Annotated[
    float, typer.Option("--start-wait", min=0, help="Seconds to wait for --api-url to answer healthy.")
]
RunToOpt = Annotated[
    int | None, typer.Option("--to", help="Stop after this migration (8 = only 008).", show_default="every pending one")
]
RehearseOpt = Annotated[
    bool | None,
    typer.Option(
        "--rehearse/--no-rehearse",
        help="Rehearse 008→target in a rolled-back transaction before the backup.",
        show_default="when the migration is estimated at ≤ 120 s",
    ),
]


def _version(raw: str) -> int:
    if not raw.isdigit() or int(raw) != runbook.VERSION:
        raise ConfigError(f"only migration 008 has a runbook (got {raw!r}): use `mandate migrate run 008`")
    return runbook.VERSION


def _remedies(
    domain_slug: list[str] | None, domain_slug_file: Path | None, unattributed_to: str | None, scope_id_map: Path | None
) -> Remedies:
    return Remedies.from_options(domain_slug or [], domain_slug_file, unattributed_to, scope_id_map)


def _check_table(run: checks.CheckRun) -> Table:
    table = Table("check", "status", "title", "measured", "offending rows (first 10)", "remedy", show_lines=True)
    for r in run.results:
        sample = "\n".join(r.sample[:10])
        if r.offending_count and r.offending_count > len(r.sample[:10]):
            sample += f"\n… and {r.offending_count - len(r.sample[:10])} more"
        table.add_row(
            r.check_id,
            f"[{_STATUS_STYLE[r.status]}]{r.status}[/]",
            r.title,
            r.measured or "",
            sample,
            (r.remedy or "") if r.status in ("FAIL", "WARN") else "",
        )
    return table


@migrate_app.command("run")
def migrate_run(
    version: Version,
    dry_run: DryRunOpt = False,
    with_backup: WithBackupOpt = False,
    backup_dir: BackupDirOpt = None,
    backup_copy_to: BackupCopyToOpt = None,
    verify_restore: VerifyRestoreOpt = False,
    api_url: RunApiUrlOpt = None,
    report: ReportOpt = None,
    allow_connections: RunAllowConnectionsOpt = False,
    lock_timeout: RunLockTimeoutOpt = None,
    lock_retries: LockRetriesOpt = 3,
    statement_timeout: RunStatementTimeoutOpt = None,
    yes: YesOpt = False,
    stop_command: StopCommandOpt = None,
    start_command: StartCommandOpt = None,
    stop_wait: StopWaitOpt = 300.0,
    start_wait: StartWaitOpt = 300.0,
    to: RunToOpt = None,
    rehearse: RehearseOpt = None,
    domain_slug: DomainSlugOpt = None,
    domain_slug_file: DomainSlugFileOpt = None,
    unattributed_to: UnattributedOpt = None,
    scope_id_map: ScopeMapOpt = None,
) -> None:
    """Run the whole 008 checklist: pre-flight, checks, backup, migration, verification, tests, report."""
    _version(version)
    cfg = settings()
    options = runbook.Options(
        dry_run=dry_run,
        backup=True if with_backup else None,
        backup_dir=backup_dir,
        backup_copy_to=backup_copy_to,
        verify_restore=verify_restore,
        api_url=api_url,
        report=report,
        allow_connections=allow_connections,
        lock_timeout=check_duration(lock_timeout or cfg.lock_timeout, "--lock-timeout"),
        lock_retries=lock_retries,
        statement_timeout=check_duration(statement_timeout or cfg.statement_timeout, "--statement-timeout"),
        yes=yes,
        stop_command=stop_command,
        start_command=start_command,
        stop_wait_s=stop_wait,
        start_wait_s=start_wait,
        to=to,
        rehearse=rehearse,
        remedies=_remedies(domain_slug, domain_slug_file, unattributed_to, scope_id_map),
    )
    confirm = (lambda question: typer.confirm(question, default=False)) if sys.stdin.isatty() else None
    book = runbook.Runbook(
        database_url(cfg),
        options,
        data_dir=cfg.data_dir,
        console=out,
        command=runbook.command_line(),
        confirm=confirm,
        lock_wait_s=cfg.migration_lock_wait_s,
        api_app=api_app,
    )
    outcome = book.run()
    if outcome.report_markdown is not None:
        out.print(f"report: {outcome.report_markdown}")
        out.print(f"        {outcome.report_json}")
    if outcome.status in ("failed", "refused"):
        raise CheckFailed(outcome.message)
    out.print(f"[green]{outcome.message}[/]")


@migrate_app.command("preflight")
def migrate_preflight(
    version: Version,
    backup_dir: BackupDirOpt = None,
    allow_connections: Annotated[
        bool, typer.Option("--allow-connections", help="Report other sessions as a warning, not a failure.")
    ] = False,
    no_backup: Annotated[bool, typer.Option("--no-backup", help="Do not check room for a backup.")] = False,
) -> None:
    """Measure everything the runbook checks before it starts; exit 1 when something refuses the run."""
    _version(version)
    cfg = settings()
    with connect(database_url(cfg), application="mandate migrate preflight 008") as conn:
        result = preflight.run(
            conn,
            backup_dir=backup_dir or cfg.data_dir / "backups",
            allow_connections=allow_connections,
            data_dir=cfg.data_dir,
            needs_backup=not no_backup,
        )
    table = Table("item", "status", "measured", "detail", show_lines=True)
    for item in result.items:
        table.add_row(item.title, f"[{_STATUS_STYLE[item.status]}]{item.status}[/]", item.measured, item.detail or "")
    out.print(table)
    sizes = Table("table", "rows", "heap", "indexes", "total")
    for name, v in result.tables.items():
        sizes.add_row(
            name, str(v["rows"]), preflight.size(v["heap"]), preflight.size(v["indexes"]), preflight.size(v["total"])
        )
    out.print(sizes)
    if result.failed:
        raise CheckFailed("pre-flight: " + "; ".join(f"{i.title}: {i.detail or i.measured}" for i in result.failed))
    out.print("[green]pre-flight passed[/]")


@migrate_app.command("check")
def migrate_check(
    version: Version,
    domain_slug: DomainSlugOpt = None,
    domain_slug_file: DomainSlugFileOpt = None,
    unattributed_to: UnattributedOpt = None,
    scope_id_map: ScopeMapOpt = None,
) -> None:
    """Run the pre-migration checks (with these remedies), change nothing; exit 1 when any check fails."""
    _version(version)
    remedies = _remedies(domain_slug, domain_slug_file, unattributed_to, scope_id_map)
    cfg = settings()
    with connect(database_url(cfg), application="mandate migrate check 008") as conn:
        remedies.validate(conn)
        result = checks.run_alone(conn, checks.CheckScript.named(checks.PRE), before=remedies.fill)
    out.print(_check_table(result))
    out.print(result.summary())
    if result.failed:
        raise CheckFailed(
            "the pre-migration checks failed; do not migrate:\n"
            + "\n".join(f"  - {r.describe()}" for r in result.failed)
        )
    out.print("[green]the pre-migration checks passed: 008 may run[/]")


@migrate_app.command("verify")
def migrate_verify(
    version: Version,
    baseline_report: Annotated[
        Path | None,
        typer.Option("--baseline", help="A runbook report (JSON) whose counts and checksums to compare with."),
    ] = None,
) -> None:
    """Run the post-migration verification and the constraint tests (rolled back); exit 1 when anything fails."""
    _version(version)
    cfg = settings()
    problems: list[str] = []
    with connect(database_url(cfg), application="mandate migrate verify 008") as conn:
        result = checks.run_alone(conn, checks.CheckScript.named(checks.POST))
        out.print(_check_table(result))
        out.print(result.summary())
        problems += [r.describe() for r in result.failed]
        source = baseline_report or runbook.last_report(cfg.data_dir)
        if source is not None:
            data = _load_report(source)
            before = (data.get("baseline") or {}).get("before")
            if before and (data.get("database") or {}).get("name") == conn.info.dbname:
                with conn.transaction(force_rollback=True):
                    now = baseline.capture(conn)
                diffs = baseline.compare(baseline.from_json(before), now)
                out.print(f"rows and content compared with the baseline of {source}: {'; '.join(diffs) or 'unchanged'}")
                problems += diffs
            elif baseline_report is not None:
                raise ConfigError(f"--baseline {source}: no baseline of database {conn.info.dbname} in it")
        else:
            out.print("[yellow]no runbook report to compare row counts and content with (--baseline REPORT.json)[/]")
        if not baseline.is_legacy(conn):
            tests = constraints.run_alone(conn)
            for t in tests.tests:
                out.print(f"{'PASS' if t.passed else '[red]FAIL[/]'} {t.title}: {t.outcome}")
            if not tests.passed:
                problems.append("constraint tests failed")
    if problems:
        raise CheckFailed("post-migration verification failed:\n" + "\n".join(f"  - {p}" for p in problems))
    out.print("[green]post-migration verification passed[/]")


@migrate_app.command("smoke")
def migrate_smoke(
    version: Version,
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="The running Mandate to test; default: start one in-process.")
    ] = None,
    wait: Annotated[float, typer.Option("--wait", min=0, help="Seconds to wait for it to answer healthy.")] = 60.0,
) -> None:
    """The checklist's smoke tests (health, decisions, verdicts, a domain-filtered list); exit 1 on failure."""
    _version(version)
    cfg = settings()
    url = database_url(cfg)
    with connect(url, application="mandate migrate smoke 008") as conn:
        pending = [f.label for f in runner.status(conn).pending]
        target = smoke.pick_target(conn)
    if pending and not api_url:
        raise CheckFailed(
            f"not applicable yet: Mandate's API needs {', '.join(pending)} on this database; "
            "run `mandate migrate up`, then this command again"
        )
    if api_url:
        smoke.wait_healthy(api_url.rstrip("/"), wait)
        with smoke.service_token(url, target) as token:
            result = smoke.run(api_url.rstrip("/"), target, token=token)
    else:
        with smoke.in_process(url, api_app) as base:
            result = smoke.run(base, target, in_process=True)
    for t in result.tests:
        out.print(f"{'PASS' if t.passed else '[red]FAIL[/]'} GET {t.url}: {t.detail}")
    if not result.passed:
        raise CheckFailed(f"{result.errors} smoke test(s) failed")
    out.print("[green]smoke tests passed[/]")


def _load_report(path: Path) -> dict[str, Any]:
    json_path = path.with_suffix(".json") if path.suffix.lower() == ".md" else path
    try:
        return reporting.load(json_path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the runbook report {json_path}: {exc}") from None


@migrate_app.command("report")
def migrate_report(
    path: Annotated[
        Path | None, typer.Argument(help="The report's JSON (or Markdown) file.", show_default="the last run's")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the Markdown here instead.")] = None,
) -> None:
    """Render a runbook report's Markdown again from its JSON record."""
    cfg = settings()
    source = path or runbook.last_report(cfg.data_dir)
    if source is None:
        raise ConfigError("no runbook report recorded yet: give the path of a report.json")
    data = _load_report(source)
    json_path = source.with_suffix(".json") if source.suffix.lower() == ".md" else source
    target = output or json_path.with_suffix(".md")
    try:
        target.write_text(reporting.render(data), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from None
    out.print(f"report: {target}")


# -- mandate backup ---------------------------------------------------------------------------------------------------


@backup_app.command("create")
def backup_create(
    backup_dir: BackupDirOpt = None,
    copy_to: Annotated[
        Path | None, typer.Option("--copy-to", help="Copy it to this folder too (hash verified).")
    ] = None,
) -> None:
    """pg_dump -Fc the database, read the archive back completely, record its size and SHA-256."""
    cfg = settings()
    directory = backup_dir or cfg.data_dir / "backups"
    for option, folder in (("--backup-dir", directory), ("--copy-to", copy_to)):
        if folder is not None and (problem := preflight.writable_dir(folder)):
            raise ConfigError(f"{option}: {problem}")
    url = database_url(cfg)
    created = backups.create(url, directory)
    created.verification = backups.verify(created.path, expected_tables=created.tables)
    backups.write_manifest(created)
    if not created.verification.ok:
        raise BackupError(f"{created.path} is not usable: {'; '.join(created.verification.problems())}")
    if copy_to is not None:
        backups.copy(created, copy_to)
    out.print(f"backup: {created.path}")
    out.print(f"size {created.size} bytes, sha256 {created.sha256}, dump {created.dump_s:.1f} s")
    out.print(f"verified: read to the end, {len(created.verification.tables_expected)} tables with their data")
    for c in created.copies:
        out.print(f"copy: {c['path']} (sha256 verified)")
    out.print(f"restore with: mandate backup restore {created.path}")


@backup_app.command("verify")
def backup_verify(file: Annotated[Path, typer.Argument(help="A backup made with pg_dump -Fc.")]) -> None:
    """Read the whole archive, check its table of contents and SHA-256 against its manifest; exit 1 if unusable."""
    result = backups.verify(file)
    out.print(f"{file}: {result.size} bytes, sha256 {result.sha256}")
    out.print(
        f"read to the end: {'yes' if result.full_read else 'NO'}; tables checked against the {result.expected_from}: "
        f"{len(result.tables_expected)}"
    )
    if not result.ok:
        raise BackupError(f"{file} is not a usable backup: {'; '.join(result.problems())}")
    out.print("[green]the backup is complete and readable[/]")


@backup_app.command("restore")
def backup_restore(
    file: Annotated[Path, typer.Argument(help="A backup made with pg_dump -Fc (mandate backup create).")],
    into_new_database: Annotated[
        str | None, typer.Option("--into-new-database", help="Restore into this new database instead.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before replacing schema mandate.")] = False,
) -> None:
    """Restore a verified backup: into this database (schema mandate replaced, one transaction) or a new one."""
    cfg = settings()
    url = database_url(cfg)
    if into_new_database is None and not yes:
        if not sys.stdin.isatty():
            raise ConfigError("restoring replaces schema mandate of this database: pass --yes (or --into-new-database)")
        if not typer.confirm(f"Replace schema mandate of this database with {file}?", default=False):
            raise BackupError("not confirmed: nothing was restored")
    out.print(f"restoring with: {backups.restore_command(file, url, into_new_database)}")
    result = backups.restore(file, url, into_new_database)
    out.print(f"[green]restored {file} into {result.database} in {result.duration_s:.1f} s[/]")
