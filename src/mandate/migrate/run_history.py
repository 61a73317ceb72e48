"""What the 008 runbook keeps of its runs in the data directory: a pointer to the last report, and each finished
run's sizes, timings and passed checks (`migration-008-runs.json`, kept by `migrate/estimate.py`), which the next
estimate and the checklist's "tested on staging" items read; and the backups earlier runs left."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import psycopg

from mandate.db import migration_log
from mandate.migrate import estimate as estimating
from mandate.migrate.preflight import Preflight
from mandate.migrate.runbook_options import VERSION

LAST_REPORT = "migration-008-last-report"


def last_report(data_dir: Path) -> Path | None:
    """The JSON of the last run's report, if it still exists."""
    pointer = data_dir / LAST_REPORT
    if not pointer.is_file():
        return None
    path = Path(pointer.read_text(encoding="utf-8").strip())
    return path if path.is_file() else None


def point_to_last_report(data_dir: Path, json_path: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / LAST_REPORT).write_text(str(json_path.resolve()) + "\n", encoding="utf-8")


def last_rehearsal(data_dir: Path, pf: Preflight | None) -> dict[str, Any] | None:
    """The newest successful run recorded for this database (else any), as JSON."""
    if pf is None:
        return None
    found = estimating.last_rehearsal(estimating.history(data_dir), pf.database_key)
    return found.as_json() if found else None


def previous_backup(backup_dir: Path) -> str | None:
    """The newest backup an earlier run left in `backup_dir` (or a run folder of it), described."""
    found = sorted(
        (p for p in [*backup_dir.glob("*.dump"), *backup_dir.glob("*/*.dump")] if p.is_file()),
        key=lambda p: p.stat().st_mtime,
    )
    if not found:
        return None
    newest = found[-1]
    age = time.time() - newest.stat().st_mtime
    return f"newest earlier backup in {backup_dir}: {newest} ({newest.stat().st_size} bytes, {age / 3600:.1f} h old)"


def remember(data_dir: Path, data: dict[str, Any], pf: Preflight | None, *, dry_run: bool) -> None:
    """Record a run that reached the migration (its report `data`, with evidence) for the next estimate and the
    staging items; a history that cannot be written only costs the next estimate its best basis."""
    if pf is None or "started_at" not in data["migration"]:
        return
    e = data.get("evidence") or {}

    def ok(key: str) -> bool:
        return bool(e.get(key, {}).get("status") == "pass")

    record = estimating.RunRecord(
        database=pf.database_key,
        when=data["started_at"],
        dry_run=dry_run,
        outcome=data["outcome"],
        db_bytes=pf.db_bytes,
        rewritten_bytes=pf.rewritten_bytes,
        steps={s["name"]: s["duration_s"] for s in data["steps"]},
        phases={str(p["number"]): p["duration_s"] for p in data["phases"]},
        migration_s=float(data["migration"].get("duration_s") or 0),
        backup_s=float((data.get("actual") or {}).get("backup_s") or 0),
        checks={
            "prechecks": ok("prechecks.passed"),
            "migration": ok("migration.errors"),
            "post": ok("post.passed"),
            "constraints": ok("constraints.slug") and ok("constraints.valid"),
            "prefix": ok("constraints.prefix"),
        },
    )
    with contextlib.suppress(OSError):
        estimating.remember(data_dir, record)


def unfinished_run(conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
    """The runbook details of the run that committed 008 when it never wrote its report (it was killed or lost its
    machine after COMMIT, before ANALYZE, the checks after COMMIT, the smoke tests and the report)."""
    found = (migration_log.details(conn, VERSION) or {}).get("runbook") or {}
    report = found.get("report")
    if not report or found.get("dry_run") or Path(report).with_suffix(".json").is_file():
        return None
    return dict(found)
