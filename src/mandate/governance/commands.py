"""`mandate apply`: apply governance bundles (docs/bundles.md), or the demo governance with `--demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mandate.console import out, settings
from mandate.db.connect import connect
from mandate.db.url import database_url
from mandate.errors import SchemaTooOld
from mandate.governance.apply import ApplyResult, apply_bundle
from mandate.governance.bundle import DEMO_FILE, Bundle, load_bundle, load_demo_bundle
from mandate.migrate import runner


def apply(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Bundle files (.yaml, .yml or .json), applied together.", metavar="FILE", show_default=False
        ),
    ] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Apply the demo governance shipped with Mandate.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check everything and show what would be written; write nothing.")
    ] = False,
) -> None:
    """Apply governance bundles: checked all-or-nothing against the database, then written in one transaction."""
    if not files and not demo:
        raise typer.BadParameter("give one or more bundle files, or --demo", param_hint="FILES")
    bundle = load_bundle(files or [])
    if demo:
        bundle = load_demo_bundle() + bundle
    with connect(database_url(settings()), application="mandate apply") as conn:
        pending = runner.status(conn).pending
        if pending:
            raise SchemaTooOld(
                f"the database schema lacks migration(s) {', '.join(f'{f.version:03d}' for f in pending)};"
                " run `mandate migrate up` first"
            )
        result = apply_bundle(conn, bundle, dry_run=dry_run)
    _report(result, bundle)


def _report(result: ApplyResult, bundle: Bundle) -> None:
    sources = ", ".join(bundle.files) or DEMO_FILE
    if result.nothing_to_apply:
        out.print(f"nothing to apply: the database already holds everything in {sources}")
        return
    table = Table("table", "object", "change", title="would write" if result.dry_run else "written")
    for change in result.changes:
        table.add_row(change.table, change.key, change.change)
    out.print(table)
    counts = ", ".join(f"{n} {name}" for name, n in result.counts.items() if n)
    if result.dry_run:
        out.print(f"dry run: would write {len(result.changes)} row(s) ({counts}); nothing was written")
    else:
        out.print(f"[green]applied {sources}: wrote {result.rows_written} row(s) ({counts}) in one transaction[/]")
