"""The `mandate` command. Thin: parse arguments, call the library, print. Only this module knows exit codes.

Exit codes: 0 success; 1 a Mandate error (the message says what to do); 2 usage error.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mandate.config import Settings, check_duration
from mandate.db.connect import connect
from mandate.db.url import database_url
from mandate.errors import MandateError
from mandate.migrate import runner

app = typer.Typer(help="Mandate: a governance control plane for AI agents.", no_args_is_help=True)
db_app = typer.Typer(help="Where the database is.", no_args_is_help=True)
migrate_app = typer.Typer(help="Apply and inspect schema migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(migrate_app, name="migrate")

# Piped output (logs, CI, `| less`) is not squeezed to 80 columns: checksums and messages stay whole.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)


def _settings() -> Settings:
    return Settings.from_env()


@db_app.command("url")
def db_url() -> None:
    """Print the database URL in use (starting the embedded server if needed): psql "$(mandate db url)"."""
    print(database_url(_settings()))


@migrate_app.command("status")
def migrate_status() -> None:
    """List applied and pending migrations, and applied files whose checksum changed since."""
    settings = _settings()
    with connect(database_url(settings), application="mandate migrate status") as conn:
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
    settings = _settings()
    with connect(database_url(settings), application="mandate migrate up") as conn:
        r = runner.Runner(
            conn,
            lock_wait_s=settings.migration_lock_wait_s,
            lock_timeout=check_duration(lock_timeout or settings.lock_timeout, "--lock-timeout"),
            statement_timeout=check_duration(statement_timeout or settings.statement_timeout, "--statement-timeout"),
            progress=lambda m: out.print(f"  {m}"),
        )
        applied = r.up(to=to)
        version = runner.status(conn).current_version
    if applied:
        out.print(f"[green]applied {len(applied)} migration(s); schema version {version:03d}[/]")
    else:
        out.print(f"nothing to do: schema version {version:03d} is up to date")


def main(argv: list[str] | None = None) -> Any:
    try:
        return app(args=argv, standalone_mode=True)
    except MandateError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise SystemExit(1) from None
