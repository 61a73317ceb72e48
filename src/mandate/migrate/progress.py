"""What an operator watches during the runbook: a live display, and the same events in a timestamped log file.

On a terminal, a Rich live panel shows the step (n/8), the 008 phase (from the migration's NOTICEs), the rows of the
table that phase rewrites, the elapsed time and the estimate; log lines scroll above it. Elsewhere (a pipe, CI, a
test), every event is one line `HH:MM:SS message`, flushed at once. The log file gets every event with a full UTC
timestamp, whatever the console.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

STEPS = (
    "pre-flight",
    "pre-migration checks",
    "backup",
    "migration",
    "post-verification",
    "constraint tests",
    "smoke tests",
    "report",
)
PHASE = re.compile(r"^phase (\d+)/(\d+): (.*)$")


@dataclass
class StepTiming:
    name: str
    started_at: str
    duration_s: float = 0.0
    status: str = "running"  # running | passed | failed | skipped
    summary: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            "status": self.status,
            "summary": self.summary,
        }


@dataclass
class PhaseTiming:
    number: int
    of: int
    title: str
    started_at: str
    duration_s: float = 0.0
    rows: str = ""
    done: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "of": self.of,
            "title": self.title,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            "rows": self.rows,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def clock(seconds: float) -> str:
    whole = max(0, round(seconds))
    return f"{whole // 3600:d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class Progress:
    """Steps, phases and log lines of one run; a live display while it is entered (on a terminal)."""

    def __init__(self, console: Console, log_path: Path | None = None, *, live: bool | None = None) -> None:
        self.console = console
        self.log_path = log_path
        self.live_enabled = console.is_terminal if live is None else live
        self.steps: list[StepTiming] = []
        self.phases: list[PhaseTiming] = []
        self.estimate_s: float | None = None
        self.phase_estimates: dict[int, float] = {}
        self.rows_for_phase: Callable[[int], str] = lambda _n: ""
        self._started = time.perf_counter()
        self._step_started = self._started
        self._phase_started = self._started
        self._current: StepTiming | None = None
        self._phase: PhaseTiming | None = None
        self._live: Live | None = None
        self._file: IO[str] | None = None
        self._pending: list[str] = []  # log lines written before the log file is opened
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def __enter__(self) -> Progress:
        if self.log_path is not None:
            self.open_log(self.log_path)
        if self.live_enabled:
            self._live = Live(console=self.console, get_renderable=self._render, refresh_per_second=4, transient=True)
            self._live.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def open_log(self, path: Path) -> None:
        """Start (or move) the log file; lines logged before are written to it first."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            if self._file is not None:
                self._file.close()
            self.log_path = path
            self._file = path.open("a", encoding="utf-8")
            self._file.writelines(self._pending)
            self._pending.clear()
            self._file.flush()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Stop the live display for the block (a confirmation prompt)."""
        live = self._live
        if live is not None:
            live.stop()
        try:
            yield
        finally:
            if live is not None:
                live.start()

    # -- events ---------------------------------------------------------------------------------------------------
    def log(self, message: str, style: str | None = None) -> None:
        with self._lock:
            lines = [f"{_now()} {line}\n" for line in message.splitlines() or [""]]
            if self._file is not None:
                self._file.writelines(lines)
                self._file.flush()
            else:
                self._pending.extend(lines)
        stamp = datetime.now().strftime("%H:%M:%S")
        text = Text(f"{stamp} ", style="dim")
        text.append(message, style=style or "")
        if self._live is not None:
            self._live.console.print(text)
        else:
            self.console.print(text, soft_wrap=True)
            self.console.file.flush()

    @contextmanager
    def step(self, name: str) -> Iterator[StepTiming]:
        """Time a step; it fails if the block raises (the exception goes on)."""
        timing = StepTiming(name, _now())
        self.steps.append(timing)
        self._current = timing
        self._step_started = time.perf_counter()
        number = f" ({STEPS.index(name) + 1}/{len(STEPS)})" if name in STEPS else ""
        self.log(f"── {name}{number}", style="bold")
        try:
            yield timing
        except BaseException:
            if timing.status == "running":
                timing.status = "failed"
            raise
        finally:
            timing.duration_s = time.perf_counter() - self._step_started
            if timing.status == "running":
                timing.status = "passed"
            self._close_phase()
            self._current = None
            if timing.summary:
                self.log(f"   {name}: {timing.status} in {timing.duration_s:.2f} s — {timing.summary}")
            else:
                self.log(f"   {name}: {timing.status} in {timing.duration_s:.2f} s")

    def skipped(self, name: str, reason: str) -> StepTiming:
        timing = StepTiming(name, _now(), 0.0, "skipped", reason)
        self.steps.append(timing)
        self.log(f"── {name}: skipped — {reason}", style="dim")
        return timing

    def notice(self, message: str) -> None:
        """A message from the migration runner (a NOTICE of 008, or the runner's own line)."""
        match = PHASE.match(message.strip())
        if match:
            self._close_phase()
            number = int(match.group(1))
            self._phase = PhaseTiming(
                number, int(match.group(2)), match.group(3), _now(), rows=self.rows_for_phase(number)
            )
            self._phase_started = time.perf_counter()
            self.phases.append(self._phase)
            rows = f" ({self._phase.rows})" if self._phase.rows else ""
            self.log(f"   008 {message.strip()}{rows}")
        else:
            self.log(f"   {message.strip()}")

    def _close_phase(self) -> None:
        if self._phase is not None and not self._phase.done:
            self._phase.duration_s = time.perf_counter() - self._phase_started
            self._phase.done = True
        self._phase = None

    # -- display --------------------------------------------------------------------------------------------------
    def _render(self) -> RenderableType:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold cyan", justify="right")
        grid.add_column()
        now = time.perf_counter()
        if self._current is not None:
            name = self._current.name
            number = f"{STEPS.index(name) + 1}/{len(STEPS)} " if name in STEPS else ""
            grid.add_row("step", f"{number}{name} — {now - self._step_started:.1f} s")
        if self._phase is not None:
            p = self._phase
            est = self.phase_estimates.get(p.number)
            phase_est = f" (estimate {est:.1f} s)" if est else ""
            grid.add_row("008 phase", f"{p.number}/{p.of} {p.title} — {now - self._phase_started:.1f} s{phase_est}")
            if p.rows:
                grid.add_row("rows", p.rows)
        total = now - self._started
        estimate = f" of about {clock(self.estimate_s)} estimated" if self.estimate_s else ""
        grid.add_row("elapsed", f"{clock(total)}{estimate}")
        return Group(Text("mandate migrate run 008", style="bold"), grid)
