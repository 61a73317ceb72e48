"""Pre-flight of the 008 runbook: everything measured before anything is checked, backed up or changed.

Each item has a status (PASS, FAIL, WARN, INFO) and its measured value:
connectivity; server version (12 or newer); database size and per-table rows and bytes; free space where the backup
goes (at least 150 % of the database); what the migration's own rewrite needs in the database's tablespace (the
rebuilt tables are written once more, about 1× their size, until COMMIT frees the old ones); other sessions on this
database (refused unless allowed; idle-in-transaction ones flagged, since they hold locks the migration waits for);
the holder of the migration lock; objects outside Mandate that depend on the tables 008 replaces (a view or a
foreign key of someone else's stops 008 in its last phase); a snapshot of the database's activity counters; and a
runtime estimate. A FAIL refuses the run before anything is written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from mandate.db import catalog, migration_backup, migration_preflight
from mandate.migrate import estimate as estimating
from mandate.migrate import runner
from mandate.migrate.baseline import TABLES

MIN_SERVER = 120000
BACKUP_HEADROOM = 1.5
REWRITTEN = tuple(t for t in TABLES if t != "organizations")  # the tables 008 rebuilds


@dataclass(frozen=True)
class Item:
    key: str
    title: str
    status: str  # PASS | FAIL | WARN | INFO
    measured: str
    detail: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "status": self.status,
            "measured": self.measured,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Session:
    pid: int
    user: str
    application: str
    client: str
    state: str
    xact_age_s: float | None
    connected_s: float
    wait_event: str

    def describe(self) -> str:
        age = f", transaction open {self.xact_age_s:.0f} s" if self.xact_age_s is not None else ""
        flag = " [idle in transaction: holds its locks]" if self.state.startswith("idle in transaction") else ""
        return f"pid {self.pid} user {self.user} application {self.application!r} from {self.client}, {self.state}{age}{flag}"

    def as_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "user": self.user,
            "application": self.application,
            "client": self.client,
            "state": self.state,
            "xact_age_s": self.xact_age_s,
            "connected_s": self.connected_s,
            "wait_event": self.wait_event,
        }


@dataclass
class Preflight:
    items: list[Item] = field(default_factory=list)
    database: str = ""
    server_version: str = ""
    server_version_num: int = 0
    system_identifier: str = ""
    db_bytes: int = 0
    tables: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> rows, heap, indexes, total
    sessions: list[Session] = field(default_factory=list)
    db_stats: dict[str, Any] = field(default_factory=dict)
    estimate: estimating.Estimate | None = None
    duration_s: float = 0.0

    def add(self, key: str, title: str, status: str, measured: str, detail: str | None = None) -> Item:
        item = Item(key, title, status, measured, detail)
        self.items.append(item)
        return item

    def get(self, key: str) -> Item | None:
        return next((i for i in self.items if i.key == key), None)

    @property
    def failed(self) -> list[Item]:
        return [i for i in self.items if i.status == "FAIL"]

    @property
    def rewritten_bytes(self) -> int:
        return sum(self.tables.get(t, {}).get("total", 0) for t in REWRITTEN)

    @property
    def database_key(self) -> str:
        return f"{self.system_identifier}/{self.database}"

    def as_json(self) -> dict[str, Any]:
        return {
            "items": [i.as_json() for i in self.items],
            "database": self.database,
            "server_version": self.server_version,
            "server_version_num": self.server_version_num,
            "system_identifier": self.system_identifier,
            "db_bytes": self.db_bytes,
            "tables": self.tables,
            "sessions": [s.as_json() for s in self.sessions],
            "db_stats": self.db_stats,
            "estimate": self.estimate.as_json() if self.estimate else None,
            "duration_s": round(self.duration_s, 3),
        }


def size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def other_sessions(conn: psycopg.Connection[Any], exclude: Collection[int] = ()) -> list[Session]:
    """Client sessions on this database other than ours (and `exclude`)."""
    return [
        Session(r[0], r[1], r[2], r[3], r[4], float(r[5]) if r[5] is not None else None, float(r[6] or 0), r[7])
        for r in migration_preflight.other_sessions(conn, exclude)
    ]


def writable_dir(path: Path) -> str | None:
    """None when files can be created in `path` (created later if missing); otherwise why not. Writes nothing
    that stays: a temporary file is created and removed in the nearest existing folder."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return f"{path}: no existing parent folder"
        probe = probe.parent
    if not probe.is_dir():
        return f"{path}: {probe} is not a folder"
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        return f"{path}: cannot create files in {probe}: {exc.strerror or exc}"
    return None


def _existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _search_path(p: Preflight, conn: psycopg.Connection[Any]) -> None:
    """The database-level search_path the checklist's plain psql commands rely on. CREATE DATABASE … TEMPLATE (the
    usual staging copy) does not carry it; 008 sets it again, but the operator should know (and a copy made after
    the migration needs it set by hand)."""
    setting = migration_preflight.database_search_path(conn)
    command = migration_backup.set_search_path_statement(p.database)
    if setting and "mandate" in setting:
        p.add("search_path", "database-level search_path", "PASS", setting)
        return
    p.add(
        "search_path",
        "database-level search_path",
        "WARN",
        setting or "not set",
        "the database has no default search_path including mandate (a CREATE DATABASE … TEMPLATE copy does not "
        f'carry it), so the checklist\'s plain `psql -d … -c "{migration_preflight.UNQUALIFIED_EXAMPLE}"` commands '
        "would not find the "
        f"tables; migration 008 sets it; on a copy made after the migration set it with `{command}`",
    )


def run(
    conn: psycopg.Connection[Any],
    *,
    backup_dir: Path | None,
    allow_connections: bool,
    own_pids: Collection[int] = (),
    data_dir: Path | None = None,
    needs_backup: bool = True,
    settle_s: float = 2.0,
) -> Preflight:
    """Measure everything; FAIL items refuse the run. `conn` is in autocommit mode; nothing is written."""
    started = time.perf_counter()
    p = Preflight()
    _server(p, conn)
    _sizes(p, conn)
    _space(p, conn, backup_dir, needs_backup)
    _sessions(p, conn, own_pids, allow_connections, settle_s)
    holder = runner.lock_holder(conn)
    p.add(
        "lock_holder",
        "migration lock (advisory)",
        "PASS" if holder is None else "FAIL",
        "free" if holder is None else f"held by pid {holder[0]}, application {holder[1]!r}",
        None if holder is None else "another migration runner is working on this database: let it finish",
    )
    _dependents(p, conn)
    _search_path(p, conn)
    _activity(p, conn)
    p.estimate = _estimate(conn, p, data_dir)
    e = p.estimate
    p.add(
        "estimate",
        "runtime estimate",
        "INFO",
        f"migration {e.migration_s:.1f} s, backup {e.backup_s:.1f} s, total {e.total_s:.1f} s",
        e.basis,
    )
    p.duration_s = time.perf_counter() - started
    return p


def _server(p: Preflight, conn: psycopg.Connection[Any]) -> None:
    """Who and where the server is: connectivity (with the round trip) and its version."""
    t0 = time.perf_counter()
    identity = migration_preflight.identity(conn)
    p.database, p.server_version, p.server_version_num, p.db_bytes, p.system_identifier, server_addr, user = identity
    p.add(
        "connectivity",
        "database connectivity",
        "PASS",
        f"connected to {p.database} as {user} ({server_addr or 'Unix socket'}), round trip "
        f"{(time.perf_counter() - t0) * 1000:.0f} ms",
    )
    p.add(
        "version",
        "PostgreSQL version (12+)",
        "PASS" if p.server_version_num >= MIN_SERVER else "FAIL",
        f"{p.server_version} (server_version_num {p.server_version_num})",
        None
        if p.server_version_num >= MIN_SERVER
        else "Mandate needs PostgreSQL 12 or newer: upgrade the server first",
    )


def _sizes(p: Preflight, conn: psycopg.Connection[Any]) -> None:
    """Every table's rows, heap, index and total bytes."""
    for name, heap, indexes, total in catalog.table_sizes(conn):
        p.tables[name] = {"rows": 0, "heap": int(heap), "indexes": int(indexes), "total": int(total)}
    for name in p.tables:
        p.tables[name]["rows"] = catalog.row_count(conn, name)
    rows = ", ".join(f"{t} {p.tables[t]['rows']}" for t in TABLES if t in p.tables)
    p.add("db_size", "database size and row counts", "INFO", f"{size(p.db_bytes)}; rows: {rows}")


def _sessions(
    p: Preflight, conn: psycopg.Connection[Any], own_pids: Collection[int], allow_connections: bool, settle_s: float
) -> None:
    """The other sessions on the database (a FAIL unless allowed) and their applications."""
    p.sessions = other_sessions(conn, own_pids)
    deadline = time.monotonic() + settle_s  # a session that has just closed takes a moment to leave the view
    while p.sessions and not allow_connections and time.monotonic() < deadline:
        time.sleep(0.1)
        p.sessions = other_sessions(conn, own_pids)
    idle_tx = [s for s in p.sessions if s.state.startswith("idle in transaction")]
    listing = "; ".join(s.describe() for s in p.sessions)
    if not p.sessions:
        p.add("connections", "other sessions on this database", "PASS", "none")
    elif allow_connections:
        p.add(
            "connections",
            "other sessions on this database",
            "WARN",
            f"{len(p.sessions)}: {listing}",
            "allowed by --allow-connections; writes they make after the backup are not in it, and the migration "
            "waits (lock_timeout, with retries) for the locks they hold"
            + (f"; {len(idle_tx)} idle in transaction" if idle_tx else ""),
        )
    else:
        p.add(
            "connections",
            "other sessions on this database",
            "FAIL",
            f"{len(p.sessions)}: {listing}",
            "stop the services that use this database (or give --stop-command), or pass --allow-connections",
        )
    apps = sorted({s.application for s in p.sessions})
    p.add("clients", "applications connected", "INFO", ", ".join(apps) if apps else "none")


def _activity(p: Preflight, conn: psycopg.Connection[Any]) -> None:
    """A snapshot of the database's activity counters."""
    stats = migration_preflight.database_stats(conn)
    if stats is None:
        return
    keys = ("numbackends", "xact_commit", "xact_rollback", "blks_read", "blks_hit", "deadlocks", "temp_bytes")
    p.db_stats = {k: int(v) for k, v in zip(keys, stats[:7], strict=True)}
    p.db_stats["conflicts"] = int(stats[7])
    p.db_stats["stats_reset"] = str(stats[8]) if stats[8] else None
    reads = p.db_stats["blks_read"] + p.db_stats["blks_hit"]
    hit = f"{100 * p.db_stats['blks_hit'] / reads:.1f} %" if reads else "n/a"
    p.add(
        "db_stats",
        "database activity counters",
        "INFO",
        f"{p.db_stats['numbackends']} backends, {p.db_stats['xact_commit']} commits, "
        f"{p.db_stats['xact_rollback']} rollbacks, cache hit {hit}, {p.db_stats['deadlocks']} deadlocks",
    )


def _space(p: Preflight, conn: psycopg.Connection[Any], backup_dir: Path | None, needs_backup: bool) -> None:
    need = int(p.db_bytes * BACKUP_HEADROOM)
    if backup_dir is None or not needs_backup:
        p.add("backup_storage", "backup storage", "INFO", "no backup in this run")
        p.add("disk_space", "free space for the backup (150 % of the database)", "INFO", "no backup in this run")
    else:
        problem = writable_dir(backup_dir)
        p.add(
            "backup_storage",
            "backup storage",
            "FAIL" if problem else "PASS",
            problem or f"{backup_dir} is writable",
            "choose a writable --backup-dir" if problem else None,
        )
        if problem is None:
            free = shutil.disk_usage(_existing(backup_dir)).free
            p.add(
                "disk_space",
                "free space for the backup (150 % of the database)",
                "PASS" if free >= need else "FAIL",
                f"{size(free)} free at {_existing(backup_dir)}; need {size(need)} (150 % of {size(p.db_bytes)})",
                None if free >= need else "free space there, or choose another --backup-dir",
            )
        else:
            p.add("disk_space", "free space for the backup (150 % of the database)", "FAIL", "not measured", problem)
    rewrite = p.rewritten_bytes
    data_directory = _data_directory(conn)
    if data_directory is not None:
        free = shutil.disk_usage(data_directory).free
        p.add(
            "tablespace_space",
            "free space for the rewrite in the database's tablespace",
            "PASS" if free >= rewrite else "FAIL",
            f"{size(free)} free at {data_directory}; the rewrite needs about {size(rewrite)} until COMMIT",
            None if free >= rewrite else "008 writes the rebuilt tables once more before dropping the old ones",
        )
    else:
        p.add(
            "tablespace_space",
            "free space for the rewrite in the database's tablespace",
            "INFO",
            f"not measurable from here (remote server or no access to data_directory); the rewrite needs about "
            f"{size(rewrite)} free there until COMMIT",
        )


def _data_directory(conn: psycopg.Connection[Any]) -> Path | None:
    """The server's data directory when it is on this machine and readable by us, else None."""
    setting = migration_preflight.data_directory(conn)
    if setting is None:
        return None
    path = Path(setting)
    local = conn.info.host.startswith("/") or conn.info.host in ("localhost", "127.0.0.1", "::1")
    return path if local and path.is_dir() and os.access(path, os.R_OK) else None


def _dependents(p: Preflight, conn: psycopg.Connection[Any]) -> None:
    blocking = catalog.dependents(conn, REWRITTEN, TABLES)
    p.add(
        "dependents",
        "objects outside Mandate on the tables 008 replaces",
        "FAIL" if blocking else "PASS",
        "; ".join(blocking) if blocking else "none",
        "008 replaces these tables and does not drop what depends on them (no CASCADE): drop these objects "
        "before migrating and recreate them on the new schema afterwards"
        if blocking
        else None,
    )
    functions = catalog.functions_mentioning_domain_id(conn)
    p.add(
        "domain_id_code",
        "database code that mentions domain_id",
        "WARN" if functions else "PASS",
        "; ".join(functions) if functions else "none",
        "these functions will fail once domain_id is gone: rewrite them for (organization_id, domain)"
        if functions
        else None,
    )


def _estimate(conn: psycopg.Connection[Any], p: Preflight, data_dir: Path | None) -> estimating.Estimate:
    calibration = estimating.calibrate(conn) if "decision_events" in p.tables else None
    table_bytes = {t: v["total"] for t, v in p.tables.items()}
    rehearsal = estimating.last_rehearsal(estimating.history(data_dir), p.database_key) if data_dir else None
    if rehearsal is not None:
        result = estimating.from_rehearsal(p.rewritten_bytes, p.db_bytes, rehearsal)
        if not result.backup_s and calibration is not None:
            result.backup_s = estimating.from_calibration(table_bytes, p.db_bytes, calibration).backup_s
        result.calibration = calibration
        return result
    if calibration is None:
        return estimating.Estimate(0.0, 0.0, {}, "no decision_events table to calibrate on")
    return estimating.from_calibration(table_bytes, p.db_bytes, calibration)
