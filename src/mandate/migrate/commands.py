"""`mandate migrate …` and `mandate backup …`: the migration runner, and the 008 runbook and its sub-steps."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mandate.config import check_duration
from mandate.console import out, settings
from mandate.db.connect import connect
from mandate.db.url import database_url
from mandate.migrate import runner

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
        raise typer.Exit(1)


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
