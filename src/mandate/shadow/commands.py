"""`mandate shadow`: what a candidate bundle would have decided over the stored history (docs/shadow.md)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mandate.console import err, out, settings
from mandate.db.connect import connect
from mandate.db.history import Window, count
from mandate.db.url import database_url
from mandate.errors import ConfigError, ReportedFailure
from mandate.governance.bundle import load_bundle
from mandate.migrate import runner
from mandate.shadow import gates as gating
from mandate.shadow import report
from mandate.shadow.run import ShadowResult, shadow

_SPAN = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime | None:
    """`30d`, `12h`, `90m`, `2w` before now, an ISO 8601 time with an offset, or `all` (None: no bound)."""
    text = text.strip()
    if text == "all":
        return None
    match = _SPAN.match(text)
    if match:
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigError(
            f"--since {text!r}: give a span such as 30d, 12h, 90m or 2w, an ISO 8601 time with an offset, or all"
        )
    return moment


Since = Annotated[str, typer.Option("--since", help="Window: 30d, 12h, 2w, an ISO 8601 time, or all.")]
Domain = Annotated[str | None, typer.Option("--domain", help="Only decisions of this domain.")]
Organization = Annotated[str | None, typer.Option("--organization", help="Only decisions of this organization.")]
Scope = Annotated[str | None, typer.Option("--scope", help="Only decisions recorded under this scope or below it.")]


def run_shadow(
    files: list[Path], window: Window, *, examples: int = 5, workers: int | None = None, quiet: bool = False
) -> ShadowResult:
    url = database_url(settings())
    bundle = load_bundle(files)  # a bundle that cannot be read is refused before anything else
    with connect(url, application="mandate shadow") as conn:
        runner.require_head(conn)
        total = 0 if quiet else count(conn, window)
    if quiet or total == 0:
        return shadow(url, bundle, window, examples=examples, workers=workers)
    columns = (TextColumn("shadow"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("shadow", total=total)
        return shadow(
            url, bundle, window, examples=examples, workers=workers, progress=lambda n: progress.advance(task, n)
        )


def shadow_command(
    files: Annotated[list[Path], typer.Argument(help="The candidate bundle files.", metavar="BUNDLE")],
    since: Since = "30d",
    domain: Domain = None,
    organization: Organization = None,
    scope: Scope = None,
    examples: Annotated[int, typer.Option(min=0, max=1000, help="Examples kept per verdict change.")] = 5,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="Evaluation processes (default: cores).")] = None,
    gate: Annotated[Path | None, typer.Option("--gate", help="Gates file: exit 1 when one fails.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON (for CI).")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="Also write the report as an HTML page.")] = None,
) -> None:
    """Evaluate candidate governance against stored decisions; nothing is written. Exit 1 when a gate fails."""
    declared = gating.load_gates(gate) if gate else None
    window = Window(parse_since(since), organization, domain, scope)
    result = run_shadow(files, window, examples=examples, workers=workers, quiet=as_json)
    checked = gating.check(declared, result.tally) if declared is not None else None
    if as_json:
        print(json.dumps(report.to_json(result, checked), indent=2, default=str))
    else:
        report.print_report(out, result, checked)
    if html is not None:
        html.write_text(report.to_html(result, checked), encoding="utf-8")
        if not as_json:
            out.print(f"HTML report: {html.resolve()}")
    if checked and not all(g.passed for g in checked):
        raise ReportedFailure("the candidate breaks a gate")
