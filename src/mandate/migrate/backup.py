"""Verified backups: `pg_dump -Fc`, proven readable, hashed, optionally copied, and restorable with one command.

A backup is *verified* when
1. the whole archive can be read: `pg_restore -f /dev/null FILE` reads every data block (`pg_restore --list`
   alone only reads the table of contents at the start of the file, so it passes a truncated archive), and
2. its table of contents names every table of schema `mandate` (from the catalog when the dump was taken) with
   both its definition (TABLE) and its rows (TABLE DATA).
Size, SHA-256 and durations are recorded in a manifest next to the archive (`FILE.json`), which `verify` checks
the file against later (and against a copy).

Restore. The archive is custom format: `psql < FILE` cannot read it (the checklist's rollback command would fail).
Into a new database:  pg_restore --single-transaction --exit-on-error -d NEWDB FILE.
Into the same database, after a migration has committed, `pg_restore --clean --if-exists --single-transaction`
fails: --clean drops only what the archive contains, and objects created since (008's functions, 009's tables, a
view on mandate_specs) keep their dependencies, so the DROPs are refused and everything rolls back. The restore
therefore replaces schema `mandate` as a whole, in one transaction:

    pg_restore -f - FILE | psql -X -v ON_ERROR_STOP=1 --single-transaction \\
        -c 'DROP SCHEMA IF EXISTS mandate CASCADE' -f - -c 'ALTER DATABASE "db" SET search_path = mandate, public'

pg_restore reads the archive and writes SQL; psql applies it all-or-nothing. Dropping is fine for append-only
tables (their triggers refuse UPDATE, DELETE and TRUNCATE, not DROP). The database's default search_path is not
part of a dump, so it is set again in the same transaction.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo

from mandate.db import catalog, migration_backup, migration_preflight, tools
from mandate.errors import BackupError, ToolNotFound

SCHEMA = "mandate"
_TOC_TABLE = re.compile(r"^\d+; \d+ \d+ (TABLE DATA|TABLE) (\S+) (\S+) ")
_CHUNK = 1 << 20


@dataclass
class Verification:
    """What `verify` established about an archive."""

    path: str
    size: int
    sha256: str
    full_read: bool
    full_read_error: str | None
    tables_expected: list[str]
    tables_missing: list[str]  # expected but without TABLE or TABLE DATA in the archive
    expected_from: str  # "manifest" | "catalog" | "archive"
    manifest_sha256: str | None
    duration_s: float

    @property
    def ok(self) -> bool:
        hash_ok = self.manifest_sha256 is None or self.manifest_sha256 == self.sha256
        return self.full_read and not self.tables_missing and bool(self.tables_expected) and hash_ok

    def problems(self) -> list[str]:
        found = []
        if not self.full_read:
            found.append(f"the archive cannot be read to the end: {self.full_read_error}")
        if self.tables_missing:
            found.append(f"tables missing from the archive: {', '.join(self.tables_missing)}")
        if not self.tables_expected:
            found.append("the archive holds no table of schema mandate")
        if self.manifest_sha256 is not None and self.manifest_sha256 != self.sha256:
            found.append(f"SHA-256 {self.sha256} differs from the one recorded at creation, {self.manifest_sha256}")
        return found

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "full_read": self.full_read,
            "full_read_error": self.full_read_error,
            "tables_expected": self.tables_expected,
            "tables_missing": self.tables_missing,
            "expected_from": self.expected_from,
            "manifest_sha256": self.manifest_sha256,
            "duration_s": round(self.duration_s, 3),
            "ok": self.ok,
        }


@dataclass
class Backup:
    """A backup archive and what is known about it."""

    path: Path
    size: int
    sha256: str
    database: str
    server_version: str
    tool: str
    tables: list[str]
    created_at: str
    dump_s: float
    verification: Verification | None = None
    copies: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size": self.size,
            "sha256": self.sha256,
            "database": self.database,
            "server_version": self.server_version,
            "tool": self.tool,
            "tables": self.tables,
            "created_at": self.created_at,
            "dump_s": round(self.dump_s, 3),
            "verification": self.verification.as_json() if self.verification else None,
            "copies": self.copies,
        }


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _client_env(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its password, and an environment carrying the password (not visible in `ps`)."""
    params = conninfo.conninfo_to_dict(url)
    password = params.pop("password", None)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return conninfo.make_conninfo(**{k: str(v) for k, v in params.items() if v is not None}), env


def _server(url: str) -> tuple[int, str, str, list[str]]:
    """(major, version, database, tables of schema mandate) of the database behind `url`."""
    try:
        with psycopg.connect(url, connect_timeout=10, application_name="mandate backup") as conn:
            tables = catalog.tables(conn)
            version = migration_preflight.server_version(conn)
            return conn.info.server_version // 10000, version, conn.info.dbname, tables
    except psycopg.OperationalError as exc:
        raise BackupError(f"cannot connect to the database: {str(exc).strip()}") from exc


def default_name(database: str, when: datetime | None = None) -> str:
    when = when or datetime.now(UTC)
    return f"{database}_backup_{when:%Y%m%d_%H%M%S}.dump"


def _die_with(parent: int) -> Callable[[], None]:
    """A preexec_fn: the child asks the kernel for SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG), and exits
    at once if the parent is already gone."""

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: the child only calls it

    def arm() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        if os.getppid() != parent:
            os._exit(1)

    return arm


def end_process_group(proc: subprocess.Popen[str], grace_s: float = 5.0) -> None:
    """End `proc` and its process group (it was started in a session of its own): SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def remove_partials(directory: Path) -> list[Path]:
    """Remove the `.partial` dumps an interrupted run left in `directory` or its run folders; return them."""
    found = sorted({*directory.glob("*.partial"), *directory.glob("*/*.partial")}) if directory.is_dir() else []
    for path in found:
        path.unlink(missing_ok=True)
    return found


def create(url: str, directory: Path, name: str | None = None) -> Backup:
    """`pg_dump -Fc` of the whole database into `directory`; writes the manifest next to it. Not yet verified."""
    major, version, database, tables = _server(url)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (name or default_name(database))
    if path.exists():
        raise BackupError(f"{path} already exists; it is never overwritten")
    pg_dump = tools.find("pg_dump", major)
    target, env = _client_env(url)
    partial = path.with_name(path.name + ".partial")
    started = time.perf_counter()
    # pg_dump runs in its own process group (a Ctrl-C in the terminal reaches only us, and we end it), and on Linux
    # it is killed by the kernel if we die first (kill -9): no orphaned dump keeps a session and a file open.
    proc = subprocess.Popen(
        [str(pg_dump.path), "--format=custom", "--blobs", "--file", str(partial), "--dbname", target],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
        preexec_fn=_die_with(os.getpid()) if sys.platform == "linux" else None,
    )
    try:
        _, stderr = proc.communicate()
    except BaseException:
        end_process_group(proc)
        partial.unlink(missing_ok=True)
        raise
    dump_s = time.perf_counter() - started
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed (exit {proc.returncode}): {stderr.strip()[-2000:]}")
    partial.rename(path)
    backup = Backup(
        path=path,
        size=path.stat().st_size,
        sha256=sha256_of(path),
        database=database,
        server_version=version,
        tool=f"{pg_dump.path} ({pg_dump.major})",
        tables=tables,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        dump_s=dump_s,
    )
    write_manifest(backup)
    return backup


def write_manifest(backup: Backup) -> None:
    data = backup.as_json()
    manifest_path(backup.path).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def read_manifest(path: Path) -> dict[str, Any] | None:
    m = manifest_path(path)
    if not m.is_file():
        return None
    try:
        loaded: dict[str, Any] = json.loads(m.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"the manifest {m} cannot be read: {exc}") from None
    return loaded


def _check_archive(path: Path) -> None:
    if not path.is_file():
        raise BackupError(f"{path} does not exist")
    with path.open("rb") as f:
        head = f.read(5)
    if head != b"PGDMP":
        raise BackupError(f"{path} is not a PostgreSQL custom-format archive (pg_dump -Fc)")


def newest(name: str) -> tools.Tool:
    """The newest `name` (pg_restore, psql) available: it reads archives of every older pg_dump."""
    for major in range(30, 11, -1):
        try:
            found = tools.find(name, major)
        except ToolNotFound:
            continue
        if found.major >= major:
            return found
    raise ToolNotFound(f"no {name} found; install the PostgreSQL client tools")


def verify(path: Path, expected_tables: list[str] | None = None) -> Verification:
    """Prove the archive readable and complete (see the module docstring). Never raises for a bad archive: the
    returned Verification says what is wrong; raises BackupError only when it cannot even start."""
    _check_archive(path)
    started = time.perf_counter()
    manifest = read_manifest(path)
    pg_restore = newest("pg_restore")
    listing = subprocess.run([str(pg_restore.path), "--list", str(path)], capture_output=True, text=True, check=False)
    entries: dict[str, set[str]] = {}
    for line in listing.stdout.splitlines():
        m = _TOC_TABLE.match(line)
        if m and m.group(2) == SCHEMA:
            entries.setdefault(m.group(3), set()).add(m.group(1))
    if expected_tables is not None:
        expected, source = sorted(expected_tables), "catalog"
    elif manifest is not None:
        expected, source = sorted(manifest.get("tables") or []), "manifest"
    else:
        expected, source = sorted(entries), "archive"
    missing = [t for t in expected if entries.get(t, set()) != {"TABLE", "TABLE DATA"}]
    full = subprocess.run(
        [str(pg_restore.path), "--file", os.devnull, str(path)], capture_output=True, text=True, check=False
    )
    error = None if full.returncode == 0 else (full.stderr.strip() or f"exit {full.returncode}")[-1000:]
    return Verification(
        path=str(path),
        size=path.stat().st_size,
        sha256=sha256_of(path),
        full_read=full.returncode == 0 and listing.returncode == 0,
        full_read_error=error or (listing.stderr.strip()[-1000:] if listing.returncode else None),
        tables_expected=expected,
        tables_missing=missing,
        expected_from=source,
        manifest_sha256=manifest.get("sha256") if manifest else None,
        duration_s=time.perf_counter() - started,
    )


def copy(backup: Backup, destination: Path) -> dict[str, Any]:
    """Copy the archive and its manifest to `destination` (a folder) and prove the copy identical (SHA-256)."""
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / backup.path.name
    if target.exists():
        raise BackupError(f"{target} already exists; it is never overwritten")
    started = time.perf_counter()
    try:
        shutil.copyfile(backup.path, target)
        shutil.copyfile(manifest_path(backup.path), manifest_path(target))
    except OSError as exc:
        raise BackupError(f"cannot copy the backup to {destination}: {exc.strerror or exc}") from exc
    digest = sha256_of(target)
    if digest != backup.sha256:
        raise BackupError(f"the copy {target} has SHA-256 {digest}, the original {backup.sha256}: copy again")
    record = {
        "path": str(target),
        "sha256": digest,
        "verified": True,
        "duration_s": round(time.perf_counter() - started, 3),
    }
    backup.copies.append(record)
    write_manifest(backup)
    return record


def restore_command(path: Path, url: str, into_new_database: str | None = None) -> str:
    """The shell command that restores `path` (what `mandate backup restore` runs), password left out."""
    target, _env = _client_env(url)
    params = conninfo.conninfo_to_dict(target)
    pg_restore, psql = str(newest("pg_restore").path), str(newest("psql").path)
    if into_new_database:
        params["dbname"] = into_new_database
        new_target = conninfo.make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})
        return (
            f"{shlex.quote(pg_restore)} --single-transaction --exit-on-error --dbname {shlex.quote(new_target)} "
            f"{shlex.quote(str(path))}"
        )
    database = str(params.get("dbname") or "")
    alter = migration_backup.set_search_path_statement(database)
    return (
        f"{shlex.quote(pg_restore)} --file - {shlex.quote(str(path))} | {shlex.quote(psql)} -X -q -v ON_ERROR_STOP=1 "
        f"--single-transaction -c {shlex.quote(migration_backup.DROP_SCHEMA)} -f - -c {shlex.quote(alter)} "
        f"--dbname {shlex.quote(target)}"
    )


@dataclass
class Restore:
    path: str
    database: str
    new_database: bool
    duration_s: float
    command: str

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "database": self.database,
            "new_database": self.new_database,
            "duration_s": round(self.duration_s, 3),
            "command": self.command,
        }


def restore(path: Path, url: str, into_new_database: str | None = None) -> Restore:
    """Restore `path` into the database of `url` (replacing schema mandate, in one transaction), or into a new
    database created for it. A failed restore changes nothing (the new database is dropped again)."""
    check = verify(path)
    if not check.ok:
        raise BackupError(f"{path} is not a verified backup, nothing was restored: {'; '.join(check.problems())}")
    target, env = _client_env(url)
    env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " -c client_min_messages=warning").strip()  # no NOTICE noise
    database = str(conninfo.conninfo_to_dict(target).get("dbname") or "")
    started = time.perf_counter()
    command = restore_command(path, url, into_new_database)
    if into_new_database:
        _create_database(url, into_new_database)
        result = subprocess.run(command, shell=True, capture_output=True, text=True, env=env, check=False)
        if result.returncode == 0:
            _set_search_path(url, into_new_database)
        else:
            _drop_database(url, into_new_database)
    else:
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, env=env, check=False
        )
    if result.returncode != 0:
        raise BackupError(
            f"the restore failed and was rolled back (exit {result.returncode}): {result.stderr.strip()[-2000:]}"
        )
    return Restore(
        str(path), into_new_database or database, bool(into_new_database), time.perf_counter() - started, command
    )


def _admin(url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10, application_name="mandate backup restore")
    except psycopg.OperationalError as exc:
        raise BackupError(f"cannot connect to the database: {str(exc).strip()}") from exc


def _create_database(url: str, name: str) -> None:
    with _admin(url) as conn:
        if migration_backup.database_exists(conn, name):
            raise BackupError(f"database {name} already exists; choose a new name (nothing was restored)")
        try:
            migration_backup.create_database(conn, name)
        except psycopg.Error as exc:
            raise BackupError(
                f"cannot create database {name}: {(exc.diag.message_primary or str(exc)).strip()}"
            ) from exc


def _drop_database(url: str, name: str) -> None:
    with _admin(url) as conn:
        migration_backup.drop_database(conn, name)


def _set_search_path(url: str, name: str) -> None:
    with _admin(url) as conn:
        migration_backup.set_search_path(conn, name)


def url_of_database(url: str, name: str) -> str:
    """`url` pointing at database `name` instead (same server, same credentials)."""
    params = conninfo.conninfo_to_dict(url)
    params["dbname"] = name
    return conninfo.make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})
