"""`mandate apply`: apply governance bundles (docs/bundles.md), or the demo governance with `--demo`.
`mandate governance check`: every governance problem the server contains and reports (MANDATE.md §3a)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mandate.apply import apply_bundle
from mandate.console import out, settings
from mandate.db.connect import connect
from mandate.db.governance import load_governance
from mandate.db.url import database_url
from mandate.errors import ReportedFailure
from mandate.governance import cache
from mandate.governance.bundle import DEMO_FILE, Bundle, load_bundle, load_demo_bundle
from mandate.governance.plan import ApplyResult
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
    gate: Annotated[
        Path | None,
        typer.Option("--gate", help="Publish only if the shadow result over stored history passes these gates."),
    ] = None,
    since: Annotated[
        str, typer.Option("--since", help="The history --gate evaluates: 30d, 12h, 2w, … or all.")
    ] = "30d",
) -> None:
    """Apply governance bundles: checked all-or-nothing against the database, then written in one transaction."""
    if not files and not demo:
        raise typer.BadParameter("give one or more bundle files, or --demo", param_hint="FILES")
    bundle = load_bundle(files or [])
    if demo:
        bundle = load_demo_bundle() + bundle
    if gate is not None:
        if demo:
            raise typer.BadParameter("--gate takes bundle files, not --demo", param_hint="--gate")
        _gate(files or [], gate, since)
    with connect(database_url(settings()), application="mandate apply") as conn:
        runner.require_head(conn)
        result = apply_bundle(conn, bundle, dry_run=dry_run)
    _report(result, bundle)


def _gate(files: list[Path], gate: Path, since: str) -> None:
    """Refuse to publish (exit 1, offending decisions listed) when the shadow result breaks a declared gate."""
    from mandate.db.history import Window
    from mandate.shadow import gates as gating
    from mandate.shadow.commands import parse_since, run_shadow

    declared = gating.load_gates(gate)
    result = run_shadow(files, Window(parse_since(since)))
    checked = gating.check(declared, result.tally)
    for g in checked:
        mark = "[green]pass[/]" if g.passed else "[red]FAIL[/]"
        out.print(f"gate {mark}: {g.gate.label} — {g.measured} over {result.tally.evaluated} stored decision(s)")
        if not g.passed and g.offenders:
            out.print(f"  offending decisions: {', '.join(g.offenders)}")
    if not all(g.passed for g in checked):
        out.print("[red]not published:[/] the candidate breaks a gate (see `mandate shadow` for the full report)")
        raise ReportedFailure("the candidate breaks a gate")


def _report(result: ApplyResult, bundle: Bundle) -> None:
    sources = ", ".join(bundle.files) or DEMO_FILE
    if result.nothing_to_apply:
        out.print(f"nothing to apply: the database already holds everything in {sources}")
        return
    table = Table("table", "object", "change", title="would write" if result.dry_run else "written")
    for change in result.changes:
        table.add_row(change.table, change.key, change.change)
    out.print(table)
    for warning in result.warnings:
        out.print(f"[yellow]warning:[/] {warning}")
    counts = ", ".join(f"{n} {name}" for name, n in result.counts.items() if n)
    if result.dry_run:
        out.print(f"dry run: would write {len(result.changes)} row(s) ({counts}); nothing was written")
    else:
        out.print(f"[green]applied {sources}: wrote {result.rows_written} row(s) ({counts}) in one transaction[/]")


def check() -> None:
    """List every governance problem the server would report (in /api/health and its log); exit 1 if there is any.

    Each problem is contained, never fatal: a policy bound to no spec never applies; a broken policy makes its spec's
    failure mode decide; an unreadable spec leaves its intent/stage without an active spec.
    """
    import asyncio

    url = database_url(settings())
    with connect(url, application="mandate governance check") as conn:
        runner.require_head(conn)
    warnings = asyncio.run(_load_warnings(url))
    if not warnings:
        out.print("[green]governance check: no problems[/] — every stored spec, scope and active policy is usable")
        return
    table = Table("organization / domain", "subject", "code", "problem and consequence", title="governance problems")
    for w in warnings:
        table.add_row(f"{w.organization_id}/{w.domain}", w.subject, w.code, w.message)
    out.print(table)
    out.print(
        f"[yellow]{len(warnings)} governance problem(s)[/]: the server serves around them; fix them with a new"
        " bundle (`mandate apply`), since stored rows are append-only"
    )
    raise ReportedFailure(f"{len(warnings)} governance problem(s)")


async def _load_warnings(url: str) -> list[cache.GovernanceWarning]:
    import psycopg
    from psycopg.rows import dict_row

    async with await psycopg.AsyncConnection.connect(
        url, autocommit=True, row_factory=dict_row, application_name="mandate governance check"
    ) as conn:
        return (await load_governance(conn)).warnings
