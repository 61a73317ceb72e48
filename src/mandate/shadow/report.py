"""A shadow result as JSON (for CI), as a terminal report (Rich) and as an HTML page a reviewer can open."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2
from rich.console import Console
from rich.table import Table

from mandate.evaluator import SEVERITY, Verdict
from mandate.shadow.gates import GateResult
from mandate.shadow.run import ShadowResult
from mandate.shadow.tally import DIMENSIONS, UNEVALUABLE

_ORDER = {**{v.value: SEVERITY[v] for v in Verdict}, UNEVALUABLE: 9}


def _change_key(change: tuple[str, str]) -> tuple[int, int]:
    return (_ORDER[change[0]], _ORDER[change[1]])


def to_json(result: ShadowResult, gates: list[GateResult] | None = None) -> dict[str, Any]:
    t = result.tally
    w = result.window
    return {
        "window": {
            "since": w.since.isoformat() if w.since else None,
            "organization_id": w.organization_id,
            "domain": w.domain,
            "scope": w.scope,
        },
        "evaluated": t.evaluated,
        "changed": t.changed,
        "unevaluable": t.unevaluable,
        "drift": t.drift,
        "transitions": [
            {"from": a, "to": b, "count": n}
            for (a, b), n in sorted(t.transitions.items(), key=lambda i: _change_key(i[0]))
        ],
        "by": {
            dimension: [
                {"key": key, "from": a, "to": b, "count": n}
                for (dim, key, a, b), n in sorted(t.groups.items(), key=lambda i: (-i[1], i[0]))
                if dim == dimension
            ]
            for dimension in DIMENSIONS
        },
        "examples": [
            {"from": a, "to": b, "decisions": decisions}
            for (a, b), decisions in sorted(t.examples.items(), key=lambda i: _change_key(i[0]))
        ],
        "drift_examples": t.drift_examples,
        "gates": None
        if gates is None
        else [
            {"gate": g.gate.label, "passed": g.passed, "measured": g.measured, "offenders": g.offenders} for g in gates
        ],
        "timing": {
            "seconds": round(result.seconds, 3),
            "read_seconds": round(result.read_seconds, 3),
            "evaluate_seconds": round(result.evaluate_seconds, 3),
            "decisions_per_second": round(result.per_second, 1),
            "workers": result.workers,
        },
    }


def print_report(console: Console, result: ShadowResult, gates: list[GateResult] | None = None) -> None:
    t = result.tally
    console.print(
        f"shadow: {t.evaluated} decision stage(s) evaluated in {result.seconds:.1f} s "
        f"({result.per_second:,.0f}/s, {result.workers} worker(s)); "
        f"[bold]{t.changed} would change[/], {t.unevaluable} could no longer be evaluated"
    )
    if t.drift:
        console.print(
            f"[yellow]note:[/] {t.drift} stored verdict(s) differ from what today's governance decides (the baseline"
            " of this comparison); they are not counted as changes"
        )
    changes = Table("from (today)", "to (candidate)", "decisions", title="verdict changes")
    for (a, b), n in sorted(t.transitions.items(), key=lambda i: _change_key(i[0])):
        if a != b:
            changes.add_row(a, b, str(n))
    if t.changed:
        console.print(changes)
        for dimension in DIMENSIONS:
            table = Table(
                dimension.replace("_", " "), "from → to", "decisions", title=f"changes by {dimension.replace('_', ' ')}"
            )
            rows = sorted(((k, a, b, n) for (d, k, a, b), n in t.groups.items() if d == dimension), key=lambda r: -r[3])
            for key, a, b, n in rows[:10]:
                table.add_row(key, f"{a} → {b}", str(n))
            console.print(table)
        for (a, b), decisions in sorted(t.examples.items(), key=lambda i: _change_key(i[0])):
            console.print(f"[bold]{a} → {b}[/], first {len(decisions)}:")
            for e in decisions:
                console.print(f"  {e['decision_id']} {e['stage']} {e['intent']}")
                console.print(f"    before: {e['before']['summary']}")
                console.print(f"    after:  {e['after']['summary']}")
    for g in gates or []:
        mark = "[green]pass[/]" if g.passed else "[red]FAIL[/]"
        console.print(f"gate {mark}: {g.gate.label} — {g.measured}")
        if not g.passed and g.offenders:
            console.print(f"  offending decisions: {', '.join(g.offenders)}")


def to_html(result: ShadowResult, gates: list[GateResult] | None = None) -> str:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda name: resources.files("mandate.shadow").joinpath(name).read_text(encoding="utf-8")
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("report.html").render(
        report=to_json(result, gates), generated=datetime.now(UTC).isoformat(timespec="seconds")
    )
