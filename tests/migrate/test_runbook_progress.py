"""What the operator watches: the live panel (step, 008 phase, rows, elapsed, estimate) and the timestamped log."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from mandate.migrate.progress import Progress


def _console(terminal: bool) -> Console:
    return Console(file=io.StringIO(), width=160, force_terminal=terminal, color_system=None)


def test_steps_and_phases_are_timed_and_logged_with_timestamps(tmp_path: Path) -> None:
    log = tmp_path / "run" / "run.log"
    progress = Progress(_console(False), log, live=False)
    progress.rows_for_phase = lambda n: "decision_events 20000 rows" if n == 7 else ""
    with progress:
        with progress.step("migration") as step:
            progress.notice("phase 7/10: rebuild decision_events")
            progress.notice('relation "migration_log" already exists, skipping')
            progress.notice("phase 8/10: rebuild verdict_events")
            step.summary = "applied 008"
        with pytest.raises(RuntimeError), progress.step("post-verification"):
            raise RuntimeError("boom")
    assert [(s.name, s.status) for s in progress.steps] == [("migration", "passed"), ("post-verification", "failed")]
    assert [(p.number, p.of, p.title, p.rows) for p in progress.phases] == [
        (7, 10, "rebuild decision_events", "decision_events 20000 rows"),
        (8, 10, "rebuild verdict_events", ""),
    ]
    assert all(p.done and p.duration_s >= 0 for p in progress.phases)
    lines = log.read_text().splitlines()
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 ", line) for line in lines)
    text = "\n".join(lines)
    assert (
        "── migration (4/8)" in text and "008 phase 7/10: rebuild decision_events (decision_events 20000 rows)" in text
    )
    assert "post-verification: failed" in text
    printed = progress.console.file.getvalue()  # type: ignore[attr-defined]  # a StringIO
    assert "008 phase 8/10" in printed


def test_lines_logged_before_the_log_file_opens_are_kept(tmp_path: Path) -> None:
    with Progress(_console(False), None, live=False) as progress:
        progress.log("early line")
        progress.open_log(tmp_path / "late.log")
        progress.log("later line")
    text = (tmp_path / "late.log").read_text()
    assert text.index("early line") < text.index("later line")


def test_the_live_panel_shows_step_phase_rows_elapsed_and_estimate() -> None:
    console = _console(True)
    progress = Progress(console, None, live=True)
    progress.estimate_s = 90
    progress.phase_estimates = {7: 3.0}
    progress.rows_for_phase = lambda n: "decision_events 20000 rows"
    with progress, progress.step("migration"):
        progress.notice("phase 7/10: rebuild decision_events")
        panel = io.StringIO()
        Console(file=panel, width=160, color_system=None).print(progress._render())
    shown = panel.getvalue()
    assert "4/8 migration" in shown
    assert "7/10 rebuild decision_events" in shown and "(estimate 3.0 s)" in shown
    assert "decision_events 20000 rows" in shown
    assert "of about 0:01:30 estimated" in shown
