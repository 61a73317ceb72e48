"""`mandate demo` on a fresh machine: only the package and an empty data directory — no DATABASE_URL."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

GOVERNANCE_TABLES = ("organizations", "domains", "scopes", "mandate_specs", "spec_status_events", "policy_snapshots")
EXPECTED_ROWS = [
    ("pre_commit_agent", "PAUSE", "PAUSE by policy-pause-large-files-v1"),
    ("pause_escalation_agent", "BLOCK", "BLOCK by policy-block-unbackedup-drops-v1"),
    ("observe_agent", "OBSERVE", "OBSERVE by policy-observe-user-login-v1"),
    ("observe_agent", "OBSERVE", "OBSERVE by policy-observe-data-exports-v1"),
    ("observe_agent", "OBSERVE", "OBSERVE by policy-observe-config-updates-v1"),
    ("support_reply_guard", "BLOCK", "BLOCK by pol-refund-002"),
    ("support_reply_guard", "PAUSE", "PAUSE by pol-refund-001"),
    ("support_reply_guard", "ALLOW", "ALLOW by default"),
]
ROW = re.compile(r"^│ ([0-9a-f]{8}) │ (\w+)\s*│ ([\w.]+)\s*│ (\w+)\s*│ (ALLOW|PAUSE|BLOCK|OBSERVE)\s*│ (.+?)\s*│$")


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A fresh MANDATE_DATA_DIR; the embedded PostgreSQL the demo leaves running there is stopped afterwards."""
    path = tmp_path / "data"
    yield path
    pid_file = path / "pgdata" / "postmaster.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().splitlines()[0])
    os.kill(pid, signal.SIGINT)  # fast shutdown
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"the embedded PostgreSQL (pid {pid}) did not stop")


def mandate(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["MANDATE_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "mandate", *args], capture_output=True, text=True, env=env, timeout=300
    )


def serve_then_interrupt(data_dir: Path) -> dict[str, object]:
    """Run `mandate demo --port 0` (serving), ask its API for health, press Ctrl-C (SIGINT), and wait for it."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(MANDATE_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "mandate", "demo", "--port", "0"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:  # ends if the demo exits early
            lines.append(line)
            if "press Ctrl-C" in line:
                break
        output = "".join(lines)
        docs = re.search(r"^API docs: (http://127\.0\.0\.1:\d+)/docs$", output, flags=re.MULTILINE)
        assert docs, output
        assert re.search(rf"^UI: +{re.escape(docs[1])}/$", output, flags=re.MULTILINE), output
        health = httpx.get(f"{docs[1]}/api/health", timeout=10).json()["status"]
        pages = [httpx.get(f"{docs[1]}{path}", timeout=10).status_code for path in ("/", "/docs")]
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return {
        "health": health,
        "pages": pages,
        "returncode": process.returncode,
        "stopped": rest.strip().endswith("stopped"),
    }


def rows(output: str) -> list[tuple[str, str, str]]:
    """(agent, verdict, first line of the explanation) per table row."""
    return [(m[2], m[5], m[6]) for m in map(ROW.match, output.splitlines()) if m]


def assert_table(output: str) -> None:
    found = rows(output)
    assert [(agent, verdict) for agent, verdict, _ in found] == [
        (agent, verdict) for agent, verdict, _ in EXPECTED_ROWS
    ]
    for (_, _, explanation), (_, _, start) in zip(found, EXPECTED_ROWS, strict=True):
        assert explanation.startswith(start), (explanation, start)


def governance_counts(url: str) -> dict[str, int]:
    counts = {}
    with psycopg.connect(url) as conn:
        for table in GOVERNANCE_TABLES:
            row = conn.execute(f"SELECT count(*) FROM mandate.{table}").fetchone()
            assert row is not None
            counts[table] = row[0]
    return counts


def decision_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM mandate.decision_events").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.slow
def test_demo_sets_up_plays_the_agents_and_can_run_again(data_dir: Path) -> None:
    first = mandate(data_dir, "demo", "--no-serve", "--port", "0")

    assert first.returncode == 0, first.stderr
    assert "demo governance: applied" in first.stdout
    assert_table(first.stdout)
    assert "backup_first == false" in first.stdout
    assert "mandate serve" in first.stdout

    url_result = mandate(data_dir, "db", "url")
    assert url_result.returncode == 0, url_result.stderr
    url = url_result.stdout.strip()
    governance = governance_counts(url)
    assert governance["organizations"] == 1 and governance["domains"] == 2 and governance["policy_snapshots"] == 3
    assert decision_count(url) == len(EXPECTED_ROWS)

    second = mandate(data_dir, "demo", "--no-serve", "--port", "0")

    assert second.returncode == 0, second.stderr
    assert "demo governance: already applied, nothing written" in second.stdout
    assert_table(second.stdout)
    assert governance_counts(url) == governance
    assert decision_count(url) == 2 * len(EXPECTED_ROWS)  # fresh decision ids each run

    serving = serve_then_interrupt(data_dir)

    assert serving["health"] == "ok"
    assert serving["pages"] == [200, 200]  # the UI and the API docs the demo prints
    assert serving["returncode"] == 0 and serving["stopped"]
    assert governance_counts(url) == governance
    assert decision_count(url) == 3 * len(EXPECTED_ROWS)


def test_demo_refuses_a_busy_port_clearly(data_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]

        result = mandate(data_dir, "demo", "--no-serve", "--port", str(port))

    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port 0" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (data_dir / "pgdata").exists()  # refused before anything was set up
