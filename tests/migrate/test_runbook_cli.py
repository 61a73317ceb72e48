"""`mandate migrate run 008` and its sub-steps as an operator runs them: subprocesses, killed at the worst moments.

A kill -9 of the runner, or the termination of its database session, at any point before COMMIT must leave the
database exactly as it was (catalog, row counts, content checksums), and a rerun must then succeed.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests import legacy_data
from tests.helpers import run_cli, scalar
from tests.migrate.test_runbook import book, make_legacy, migration_log_8, snapshot

APPLICATION = "mandate migrate run 008"


class Runner:
    """`mandate migrate run 008 …` in a process group of its own, its output read line by line."""

    def __init__(self, url: str, data_dir: Path, *args: str) -> None:
        env = {**os.environ, "DATABASE_URL": url, "MANDATE_DATA_DIR": str(data_dir)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mandate", "migrate", "run", "008", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"the runner ended before printing {text!r}:\n{''.join(self.lines)}")
            self.lines.append(line)
            if text in line:
                return line

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        code = self.proc.wait(timeout=timeout)
        while True:
            line = self._queue.get(timeout=10)
            if line is None:
                break
            self.lines.append(line)
        self._reader.join(timeout=10)
        return code, "".join(self.lines)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)  # the runner and its children (pg_dump), nothing else
        self.proc.wait(timeout=30)
        self._reader.join(timeout=10)


def _wait_until_the_session_is_gone(url: str, timeout: float = 60) -> None:
    """After a kill the server rolls the transaction back once it notices the client is gone (≤ 1 s on 14+)."""
    with psycopg.connect(url, autocommit=True) as conn:
        deadline = time.monotonic() + timeout
        while scalar(conn, "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (APPLICATION,)):
            assert time.monotonic() < deadline, "the killed runner's session is still there"
            conn.execute("SELECT pg_sleep(0.05)")


@pytest.fixture
def legacy(fresh_db: Callable[..., str]) -> str:
    return make_legacy(fresh_db, "add_unattributed_rows")


def _remedy() -> list[str]:
    return ["--unattributed-to", f"{legacy_data.EXAMPLE_ORG_ID}/unattributed"]


# -- crashes ---------------------------------------------------------------------------------------------------------

KILL_POINTS = [
    "── pre-migration checks",
    "pg_dump -Fc into",
    "008 phase 1/10",
    "008 phase 7/10",
    "008 phase 10/10",
    "── post-verification",
]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_kill_9_of_the_runner_leaves_the_database_unchanged_and_a_rerun_succeeds(
    legacy: str, tmp_path: Path, point: str
) -> None:
    before = snapshot(legacy)
    run = Runner(legacy, tmp_path / "data", "--yes", "--backup-dir", str(tmp_path / "backups"), *_remedy())
    run.wait_for(point)
    run.kill()
    _wait_until_the_session_is_gone(legacy)
    assert snapshot(legacy) == before, f"killed at {point!r}"
    assert migration_log_8(legacy) is None
    rerun = book(legacy, tmp_path / "rerun", remedies=_remedies()).run()
    assert rerun.status == "succeeded", rerun.message


def _remedies() -> Any:
    from mandate.migrate.remedies import Remedies

    return Remedies.from_options(unattributed_to=f"{legacy_data.EXAMPLE_ORG_ID}/unattributed")


@pytest.mark.parametrize("point", ["008 phase 3/10", "008 phase 9/10", "── post-verification"])
def test_terminating_the_runners_session_leaves_the_database_unchanged_and_says_so(
    legacy: str, tmp_path: Path, point: str
) -> None:
    before = snapshot(legacy)
    run = Runner(legacy, tmp_path / "data", "--yes", "--backup-dir", str(tmp_path / "backups"), *_remedy())
    run.wait_for(point)
    with psycopg.connect(legacy, autocommit=True) as conn:
        terminated = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (APPLICATION,)
        ).fetchall()
    assert terminated == [(True,)]
    code, output = run.finish()
    assert code == 1, output
    assert "the database is unchanged" in output
    assert "connection to the database was lost" in output or "terminating connection" in output
    assert "report:" in output
    _wait_until_the_session_is_gone(legacy)
    assert snapshot(legacy) == before
    rerun = book(legacy, tmp_path / "rerun", remedies=_remedies()).run()
    assert rerun.status == "succeeded", rerun.message


# -- the whole command, and its sub-steps -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def legacy_service(legacy: str) -> Iterator[subprocess.Popen[str]]:
    """A process standing for the old service: it holds a session until it is stopped."""
    code = (
        "import psycopg, time, sys\n"
        f"c = psycopg.connect({legacy!r}, application_name='legacy-mandate')\n"
        "print('connected', flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "connected"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)
    proc.stdout.close()


def test_the_operator_flow_stop_migrate_start_smoke(
    legacy: str, tmp_path: Path, legacy_service: subprocess.Popen[str]
) -> None:
    env = {"DATABASE_URL": legacy, "MANDATE_DATA_DIR": str(tmp_path / "data")}
    # Pre-flight sees the old service's session and refuses; the sub-steps change nothing.
    preflight = run_cli("migrate", "preflight", "008", "--backup-dir", str(tmp_path / "backups"), env=env)
    assert preflight.returncode == 1 and "'legacy-mandate'" in preflight.stdout + preflight.stderr
    check = run_cli("migrate", "check", "008", env=env)
    assert check.returncode == 1 and "PRE-15" in check.stderr and "--unattributed-to" in check.stderr
    check = run_cli("migrate", "check", "008", *_remedy(), env=env)
    assert check.returncode == 0, check.stderr
    assert "the pre-migration checks passed" in check.stdout
    verify = run_cli("migrate", "verify", "008", env=env)
    assert verify.returncode == 1 and "POST-01" in verify.stderr
    dry = run_cli("migrate", "run", "008", "--dry-run", "--allow-connections", *_remedy(), env=env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "dry run complete" in dry.stdout and "report:" in dry.stdout
    assert migration_log_8(legacy) is None

    port = _free_port()
    pidfile = tmp_path / "serve.pid"
    start = f"{sys.executable} -m mandate serve --port {port} > {tmp_path / 'serve.log'} 2>&1 & echo $! > {pidfile}"
    try:
        result = run_cli(
            "migrate", "run", "008", "--yes", *_remedy(),
            "--backup-dir", str(tmp_path / "backups"),
            "--stop-command", f"kill {legacy_service.pid}",
            "--start-command", start,
            "--api-url", f"http://127.0.0.1:{port}",
            "--start-wait", "60",
            env=env,
            timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert "migration 008 applied and verified" in result.stdout
        report_path = Path(
            next(line.split(" ", 1)[1] for line in result.stdout.splitlines() if line.startswith("report: "))
        )
        text = report_path.read_text()
        assert "- [x] Verify services healthy — **A** ✔" in text
        assert "- [x] Verify services stopped — **A** ✔ after --stop-command" in text
        smoke = run_cli("migrate", "smoke", "008", "--api-url", f"http://127.0.0.1:{port}", env=env)
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
        assert smoke.stdout.count("PASS") == 4
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
    verify = run_cli("migrate", "verify", "008", env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "compared with the baseline" in verify.stdout and "unchanged" in verify.stdout
    again = run_cli("migrate", "run", "008", "--yes", env=env)
    assert again.returncode == 0 and "already applied" in again.stdout


# -- bad options: exit 1, a clear message, nothing written ---------------------------------------------------------------

BAD = [
    (["--domain-slug", "Customer Support"], "--domain-slug must be NAME=slug"),
    (["--domain-slug", "Finance=Not A Slug"], "is not a slug"),
    (["--unattributed-to", "00000000-0000-0000-0000-000000000001/unattributed"], "does not exist in this database"),
    (["--unattributed-to", "acme"], "--unattributed-to must be ORG_ID/DOMAIN"),
    (["--scope-id-map", "/nonexistent/map.csv"], "cannot read the file"),
    (["--lock-timeout", "soon"], "--lock-timeout must be a duration"),
    (["--backup-dir", "/dev/null/backups"], "--backup-dir: /dev/null/backups: /dev/null is not a folder"),
    (["--to", "7"], "--to must be a migration version"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[b[1][:30] for b in BAD])
def test_bad_options_exit_1_with_a_clear_message_and_write_nothing(
    legacy: str, tmp_path: Path, args: list[str], message: str
) -> None:
    before = snapshot(legacy)
    data = tmp_path / "data"
    result = run_cli(
        "migrate", "run", "008", "--yes", *args, env={"DATABASE_URL": legacy, "MANDATE_DATA_DIR": str(data)}
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in " ".join(result.stderr.split()), result.stderr
    assert "Traceback" not in result.stderr
    assert not data.exists(), "nothing written"
    assert snapshot(legacy) == before


def test_a_real_run_without_a_terminal_needs_yes(legacy: str, tmp_path: Path) -> None:
    result = run_cli("migrate", "run", "008", env={"DATABASE_URL": legacy, "MANDATE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 1 and "pass --yes" in result.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["run", "preflight", "check", "verify", "smoke"])
def test_only_008_has_a_runbook(legacy: str, command: str) -> None:
    result = run_cli("migrate", command, "009", env={"DATABASE_URL": legacy})
    assert result.returncode == 1 and "only migration 008 has a runbook" in result.stderr


def test_preflight_allows_connections_when_told(legacy: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": legacy, "MANDATE_DATA_DIR": str(tmp_path)}
    with psycopg.connect(legacy, application_name="reporting-job") as other:
        refused = run_cli("migrate", "preflight", "008", env=env)
        assert refused.returncode == 1
        assert f"pid {other.info.backend_pid}" in refused.stdout and "'reporting-job'" in refused.stdout
        allowed = run_cli("migrate", "preflight", "008", "--allow-connections", env=env)
        assert allowed.returncode == 0, allowed.stdout + allowed.stderr
        assert "pre-flight passed" in allowed.stdout
