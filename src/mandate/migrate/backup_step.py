"""The runbook's backup step: the verified backup (`migrate/backup.py`) taken into the run's folder, optionally
copied, and — with --verify-restore — restored into a scratch database whose baseline the migration transaction
compares with the real one."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from mandate.db import migration_backup
from mandate.errors import BackupError
from mandate.migrate import backup as backups
from mandate.migrate import baseline, preflight
from mandate.migrate.progress import Progress, StepTiming
from mandate.migrate.runbook_options import Options


def take(
    conn: psycopg.Connection[Any],
    url: str,
    run_dir: Path,
    opts: Options,
    progress: Progress,
    data: dict[str, Any],
    step: StepTiming,
    *,
    started_at: datetime,
) -> tuple[backups.Backup, dict[str, Any] | None]:
    """Create, verify, copy and (--verify-restore) restore-test the backup, recording each in `data`; the backup and
    the restored copy's baseline (None without a restore test). BackupError when it is not usable."""
    started = time.perf_counter()
    progress.log(f"pg_dump -Fc into {run_dir}")
    b = backups.create(url, run_dir)
    data["backup"] = b.as_json()
    progress.log(f"   {b.path.name}: {b.size} bytes in {b.dump_s:.1f} s, sha256 {b.sha256}; reading it back")
    b.verification = backups.verify(b.path, expected_tables=b.tables)
    backups.write_manifest(b)
    data["backup"] = b.as_json()
    data["restore_command"] = backups.restore_command(b.path, url)
    if not b.verification.ok:
        raise BackupError(f"the backup {b.path} is not usable: {'; '.join(b.verification.problems())}")
    progress.log(
        f"   verified: read to the end, {len(b.verification.tables_expected)} tables with data, "
        f"in {b.verification.duration_s:.1f} s"
    )
    if opts.backup_copy_to is not None:
        record = backups.copy(b, opts.backup_copy_to)
        progress.log(f"   copied to {record['path']}, sha256 verified")
        data["backup"] = b.as_json()
    restore_state = restore_test(conn, url, b, progress, data, started_at=started_at) if opts.verify_restore else None
    data.setdefault("actual", {})["backup_s"] = round(time.perf_counter() - started, 3)
    step.summary = f"{b.path} ({preflight.size(b.size)}, sha256 {b.sha256[:16]}…)"
    return b, restore_state


def restore_test(
    conn: psycopg.Connection[Any],
    url: str,
    b: backups.Backup,
    progress: Progress,
    data: dict[str, Any],
    *,
    started_at: datetime,
) -> dict[str, Any]:
    """Restore the backup into a scratch database and capture its baseline (compared with the real one later)."""
    name = f"{conn.info.dbname}_m008_restore_{started_at:%Y%m%d%H%M%S}"[:63]
    progress.log(f"   restore test: restoring into scratch database {name}")
    restored = backups.restore(b.path, url, into_new_database=name)
    try:
        with (
            psycopg.connect(backups.url_of_database(url, name), autocommit=True) as scratch,
            scratch.transaction(force_rollback=True),
        ):
            state = baseline.capture(scratch)
    finally:
        migration_backup.drop_database(conn, name)
    restore_state = baseline.as_json(state)
    data["restore_test"] = {
        "database": name,
        "duration_s": restored.duration_s,
        "passed": None,
        "summary": "restored; compared with the baseline once it is captured",
        "baseline": restore_state,
    }
    return restore_state
