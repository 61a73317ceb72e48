"""How long the 008 runbook will take: from a rehearsal when there is one, from a calibration otherwise.

A *rehearsal* is a past run (a `--dry-run`, or a real run) recorded in the data directory
(`migration-008-runs.json`): its database size and the seconds of every step and 008 phase. The newest rehearsal of
this database (or, failing that, of any database) is scaled by the ratio of the sizes of the tables 008 rewrites.

Without one, a *calibration* measures this server: the time to copy a sample of decision_events (its first rows,
read once into a temporary table) into another temporary table gives a copy rate in bytes per second, and each part
of the migration transaction is priced at that rate: a fixed amount of work (catalog changes, some forty index and
key creations, statements) plus a multiple of the bytes it reads, writes and indexes. Either way it is an estimate, and
the report shows it next to the actual times.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from mandate.db import migration_estimate

HISTORY = "migration-008-runs.json"
_KEEP = 50
SAMPLE_ROWS = 20_000
CALIBRATION_TEMP_BUFFERS = "64MB"  # room for the sample in the backend's memory (allocated only as it is used)
CALIBRATION_REPEATS = 10
CALIBRATION_WINDOW_S = 2.0  # … and for at least this long, so that a burst of other work cannot cover every copy
CALIBRATION_MAX_REPEATS = 200

# Price of each part, in seconds at the calibrated copy rate: (fixed work + factor × bytes of the tables it rewrites)
# / rate. The calibration copies into a temporary table (no WAL, no index), so the factors carry what it leaves out:
# WAL, the joins of the rebuild, and above all the indexes (phase 10 builds some forty of them, four GIN, and validates
# the foreign keys). The fixed work (catalog changes, index and key creation, statements: about half a second in all on
# the 2-core test machine) is given in bytes of copy, so that it too scales with the server's speed.
# Refitted (issue 12) on the legacy corpus (legacy_data.build_corpus) at 20 000, 50 000 and 200 000 decisions on the
# quiet machine (PostgreSQL 15, the chain 008 → 013), each part against its measured time: phase 10 costs more per
# byte than the first fit said (22, not 14), the rebuild of decision_events and the work around 008 and after it much
# less, and the fixed work a sixth of it (docs/benchmarks.md, "The estimate at small sizes and under load"). An
# earlier fit on the same corpus on a busier day put 3 s of fixed work in; the host's speed varies from day to day
# by more than the calibration sees. The 1 M, 3 M and 10 M decision runs predate 010 and these prices; a per-byte
# price growing with the size, tried after the 3 M run, was refuted by the 10 M one. Refitted again (issue 20) on
# the chain 008 → 014 at 1 M, 3 M and 10 M decisions (bench/migration.py, quiet machine), where the prices fitted on
# the small corpus missed by −24 %, −37 % and −36 %: the row copies of phases 3 and 7–9 took 1.6–2.3 × their price,
# the work around 008 in its transaction (the baseline's hash of every row, the post-verification) 17–21 × the
# calibration copy per byte of the event tables (priced 5: at corpus sizes the rows it reads stay in memory), the
# chain after it 1.1–1.4 × its price. With these prices: +11 %, −8 %, −5 % on those runs, and −13 % on a 1 M database
# migrated beside another process's load, not used in the fit (bench/findings.md, "Migration 008", round 2). The
# small corpus is priced higher than it measured (not re-measured). A rehearsal (a dry run) replaces them all.
EVENT_TABLES = ("decision_events", "verdict_events", "audit_timeline_entries")
PHASE_TABLES: dict[int, tuple[str, ...]] = {
    1: (),
    2: ("domains",),
    3: EVENT_TABLES,
    4: ("scopes", "policy_snapshots"),
    5: ("domains", "scopes"),
    6: ("policy_snapshots", "mandate_specs"),
    7: ("decision_events",),
    8: ("verdict_events",),
    9: ("audit_timeline_entries",),
    10: EVENT_TABLES,
}
_PHASE_FACTOR = {1: 0.0, 2: 0.5, 3: 2.4, 4: 0.5, 5: 5.0, 6: 5.0, 7: 4.0, 8: 10.0, 9: 12.0, 10: 22.0}
_PHASE_FIXED_BYTES = {10: 0.3e9}  # swap, create the keys, indexes and triggers, verify: 0.3 s at 1 GB/s of copy
_PHASE_FIXED_S = 0.01  # statement overhead per phase
# Around 008, in its transaction: the baseline (every row hashed) and the post-verification scripts …
_AROUND_FACTOR = 19.0
_AROUND_FIXED_BYTES = 0.1e9
# … and the migrations after it (009–014): 010 adds a column to the timeline, rewrites the entries whose stage their
# decision does not have (the original server's outcome reports) and validates a new foreign key; 014 rewrites
# decision_events with a new column filled (one pass, every index rebuilt) and builds two indexes. Factors per byte
# of each table: the timeline's fitted at 50 000 and 200 000 corpus decisions; decision_events' is the rewrite's own,
# measured at 1 000 000 decisions (46.1 s for 984 MB at a calibration of 1,331 MB/s: 62 — the first guess, 20,
# derived from the earlier UPDATE's fit at small sizes, put 014 at a third of that), both then × 1.3 for the chain's
# time at 3 M and 10 M (bench/findings.md, "Migration 008", round 2).
# 015 builds one index on decision_events: 16.8 s at 10 M decisions (8.05 GB, a calibration of 1,353 MB/s): 2.8,
# added as 3.
_CHAIN_FACTORS = {"audit_timeline_entries": 6.5, "decision_events": 83.0}
_CHAIN_FIXED_BYTES = 0.1e9
_DUMP_FACTOR = 7.0  # pg_dump, then a full read of the archive, per byte of the database
# Every price above was fitted to calibrations whose copy did not fit in temp_buffers; kept in the backend's memory
# (CALIBRATION_TEMP_BUFFERS) the same copy runs faster: 1.17 × on the benchmarks' PostgreSQL, 1.05 × on the test
# machine's PostgreSQL 15 (8 calibrations each way, alternating, on one 20,000-decision database). The rate is
# divided by the former, so that the fitted prices still apply.
_IN_MEMORY_SPEEDUP = 1.17
# Since then every copy reads the sample from the backend's memory too (`calibrate`), which is faster again than
# reading it from the table as the prices were fitted with, by how the table was read: a table within a quarter of
# shared_buffers from shared buffers (1.06 ×), a larger one through a small ring of buffers, every page from the
# operating system (1.52 ×; 6 calibrations each way, alternating, on one database of 20,000 and one of 1,000,000
# decisions, the benchmarks' PostgreSQL, its page cache warm: bench/findings.md, "The calibration's source").
_FROM_MEMORY_SPEEDUP = {False: 1.06, True: 1.52}  # by Calibration.large_table


@dataclass(frozen=True)
class Calibration:
    sample_rows: int
    sample_bytes: int
    seconds: float
    clock: str = "wall"  # "cpu": the server process's own CPU time (same host), which other work does not inflate
    large_table: bool = False  # decision_events beyond a quarter of shared_buffers (read through a ring of buffers)

    @property
    def bytes_per_s(self) -> float:
        return self.sample_bytes / self.seconds if self.seconds > 0 else 50e6

    def as_json(self) -> dict[str, Any]:
        return {
            "sample_rows": self.sample_rows,
            "sample_bytes": self.sample_bytes,
            "seconds": round(self.seconds, 4),
            "clock": self.clock,
            "large_table": self.large_table,
        }


@dataclass
class Estimate:
    migration_s: float  # the migration transaction: pre-checks, baseline, 008, post-checks, comparison
    backup_s: float
    phases: dict[int, float]
    basis: str
    calibration: Calibration | None = None

    @property
    def total_s(self) -> float:
        return self.migration_s + self.backup_s

    def as_json(self) -> dict[str, Any]:
        return {
            "migration_s": round(self.migration_s, 2),
            "backup_s": round(self.backup_s, 2),
            "total_s": round(self.total_s, 2),
            "phases": {str(k): round(v, 3) for k, v in self.phases.items()},
            "basis": self.basis,
            "calibration": self.calibration.as_json() if self.calibration else None,
        }


@dataclass
class RunRecord:
    """What a finished run (dry or real) teaches the next estimate."""

    database: str  # system identifier + database name
    when: str
    dry_run: bool
    outcome: str
    db_bytes: int
    rewritten_bytes: int
    steps: dict[str, float] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    migration_s: float = 0.0
    backup_s: float = 0.0
    checks: dict[str, Any] = field(default_factory=dict)  # which parts passed, for the "tested on staging" items

    def as_json(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "when": self.when,
            "dry_run": self.dry_run,
            "outcome": self.outcome,
            "db_bytes": self.db_bytes,
            "rewritten_bytes": self.rewritten_bytes,
            "steps": self.steps,
            "phases": self.phases,
            "migration_s": self.migration_s,
            "backup_s": self.backup_s,
            "checks": self.checks,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        return cls(
            str(data["database"]),
            str(data["when"]),
            bool(data["dry_run"]),
            str(data["outcome"]),
            int(data["db_bytes"]),
            int(data["rewritten_bytes"]),
            dict(data.get("steps") or {}),
            dict(data.get("phases") or {}),
            float(data.get("migration_s") or 0),
            float(data.get("backup_s") or 0),
            dict(data.get("checks") or {}),
        )


def history(data_dir: Path) -> list[RunRecord]:
    path = data_dir / HISTORY
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return [RunRecord.from_json(r) for r in raw]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError):
        return []  # a damaged history only costs the estimate its best basis


def remember(data_dir: Path, record: RunRecord) -> None:
    records = [*history(data_dir), record][-_KEEP:]
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / HISTORY
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([r.as_json() for r in records], indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def last_rehearsal(records: list[RunRecord], database: str) -> RunRecord | None:
    """The newest successful run of `database` (a dry run or a real one), else of any database."""
    good = [r for r in records if r.outcome in ("rehearsed", "succeeded") and r.migration_s > 0]
    same = [r for r in good if r.database == database]
    candidates = same or good
    return candidates[-1] if candidates else None


def _backend_cpu_clock(conn: psycopg.Connection[Any]) -> Callable[[], float] | None:
    """The CPU time (s) of this connection's server process, when the server runs on this machine and Linux shows it
    (/proc/<pid>/schedstat: nanoseconds on a CPU); None otherwise (a remote server, another OS, no permission)."""
    host = conn.info.host or ""
    if not (host.startswith("/") or host in ("localhost", "127.0.0.1", "::1")):
        return None
    pid = conn.info.backend_pid
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if not f.read().startswith(b"postgres"):
                return None  # the same pid, but not a PostgreSQL process: the server is in another pid namespace
    except OSError:
        return None
    path = f"/proc/{pid}/schedstat"

    def clock() -> float:
        with open(path, encoding="ascii") as f:
            return int(f.read().split()[0]) / 1e9

    try:
        clock()
    except (OSError, ValueError, IndexError):
        return None
    return clock


def calibrate(
    conn: psycopg.Connection[Any],
    rows: int = SAMPLE_ROWS,
    repeats: int = CALIBRATION_REPEATS,
    window_s: float = CALIBRATION_WINDOW_S,
) -> Calibration:
    """Time copying up to `rows` decision events from one temporary table into another (in a savepoint, rolled back).

    The first `rows` decision events are read once (`migration_estimate.read_sample`); every timed copy then reads
    them from the backend's memory, not from the table, whose pages would cost what the kernel's cache holds of them
    (bench/findings.md, "The calibration's source"). Both tables stay in that memory: the session's `temp_buffers` is
    raised to CALIBRATION_TEMP_BUFFERS first (allowed until the session's first temporary table; otherwise left as it
    is). A copy larger than `temp_buffers` (8 MB by default, the sample ~13 MB) hands pages to the operating system,
    whose cost depends on what else the kernel is doing: right after a 24 GB database was written, with the machine's
    memory full of page cache, such copies took 2.4 × the server CPU time of the same copies 40 minutes later
    (bench/findings.md, "The calibration's sample").

    One copy takes milliseconds, so a single timing swings with the cache and with whatever else the machine does:
    the copy is made once to warm the cache (not counted), then at least `repeats` times over at least
    CALIBRATION_WINDOW_S, and one time is taken from them all (`copy_seconds`). When the server runs on this machine,
    each copy is timed by the server process's own CPU time rather than the wall clock: other processes then cost it
    nothing even when they keep every core busy for the whole window (a wall-clock minimum only survives bursts).
    How far two pre-flights of one database agree is measured by `python -m bench migration` (docs/benchmarks.md),
    not asserted by a test: it is a matter of the machine's noise."""
    migration_estimate.raise_temp_buffers(conn, CALIBRATION_TEMP_BUFFERS)
    cpu = _backend_cpu_clock(conn)
    timings: list[float] = []
    sample: tuple[int, int] | None = None
    with conn.transaction(force_rollback=True):
        migration_estimate.read_sample(conn, rows)
        large_table = migration_estimate.read_through_ring(conn)
        window_ends = time.perf_counter() + window_s
        for attempt in range(CALIBRATION_MAX_REPEATS + 1):
            if attempt > repeats and time.perf_counter() > window_ends:
                break
            with conn.transaction(force_rollback=True):
                started, cpu_started = time.perf_counter(), cpu() if cpu else 0.0
                migration_estimate.copy_sample(conn)
                wall, cpu_s = time.perf_counter() - started, (cpu() - cpu_started) if cpu else 0.0
                if attempt:
                    # The CPU time, unless it is not plausible (a copy waiting on I/O takes more wall time, never less).
                    timings.append(cpu_s if cpu and 0 < cpu_s <= wall * 1.05 else wall)
                sample = migration_estimate.sample_size(conn)
    assert sample is not None
    clock = "cpu" if cpu else "wall"
    return Calibration(sample[0], sample[1], copy_seconds(timings, clock), clock, large_table)


def copy_seconds(timings: list[float], clock: str) -> float:
    """The one copy time of a calibration. On the wall clock the fastest: other work on the machine only ever adds
    wall time, so the minimum is the copy that nothing else slowed. On the server's CPU clock the median: other work
    adds nothing to it, but what a CPU-second achieves still swings both ways on a shared host (a sibling hardware
    thread busy or idle, the core's frequency), and a minimum picks the luckiest copy of the window — once 24 %
    below the others of the same database, in CI."""
    return statistics.median(timings) if clock == "cpu" else min(timings)


def from_calibration(table_bytes: dict[str, int], db_bytes: int, calibration: Calibration) -> Estimate:
    speedup = _IN_MEMORY_SPEEDUP * _FROM_MEMORY_SPEEDUP[calibration.large_table]
    rate = max(calibration.bytes_per_s / speedup, 1e6)

    def rewritten(tables: tuple[str, ...]) -> int:
        return sum(table_bytes.get(t, 0) for t in tables)

    phases = {
        n: _PHASE_FIXED_S + (_PHASE_FIXED_BYTES.get(n, 0.0) + _PHASE_FACTOR[n] * rewritten(tables)) / rate
        for n, tables in PHASE_TABLES.items()
    }
    around = (_AROUND_FIXED_BYTES + _AROUND_FACTOR * rewritten(EVENT_TABLES)) / rate
    chain = (_CHAIN_FIXED_BYTES + sum(f * table_bytes.get(t, 0) for t, f in _CHAIN_FACTORS.items())) / rate
    clock = "server CPU time" if calibration.clock == "cpu" else "wall clock"
    basis = (
        f"calibration: copied {calibration.sample_rows} decision events ({calibration.sample_bytes} bytes) "
        f"in {calibration.seconds * 1000:.0f} ms of {clock} ({calibration.bytes_per_s / 1e6:.0f} MB/s); "
        "no rehearsal recorded"
    )
    return Estimate(sum(phases.values()) + around + chain, _DUMP_FACTOR * db_bytes / rate, phases, basis, calibration)


def from_rehearsal(rewritten_bytes: int, db_bytes: int, record: RunRecord) -> Estimate:
    scale = rewritten_bytes / record.rewritten_bytes if record.rewritten_bytes else 1.0
    dump_scale = db_bytes / record.db_bytes if record.db_bytes else 1.0
    phases = {int(k): v * scale for k, v in record.phases.items()}
    kind = "dry run" if record.dry_run else "run"
    basis = (
        f"rehearsal: the {kind} of {record.when} on {record.database} took {record.migration_s:.1f} s for "
        f"{record.rewritten_bytes} bytes, scaled ×{scale:.2f}"
    )
    backup = record.backup_s * dump_scale if record.backup_s else 0.0
    return Estimate(record.migration_s * scale, backup, phases, basis)
