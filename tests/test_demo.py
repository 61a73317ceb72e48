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
TOUR_DECISIONS = 4
"""The approval tour's decision rows: a PAUSE, its resume, a PAUSE nobody approved and its `executed` stage."""
HEADING = re.compile(r"^(ALLOW|PAUSE|BLOCK|OBSERVE) +([0-9a-f]{8})  ([\w.]+) \((\w+)\) by (\w+)$")
WIDTH = 80


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


def mandate(data_dir: Path, *args: str, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "COLUMNS")}
    env["MANDATE_DATA_DIR"] = str(data_dir)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "mandate", *args], capture_output=True, text=True, env=env, timeout=300
    )


def serve_then_interrupt(data_dir: Path) -> dict[str, object]:
    """Run `mandate demo --port 0` (serving), ask its API for health and the pages it names, press Ctrl-C (SIGINT),
    and wait for it."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "COLUMNS")}
    env.update(MANDATE_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", COLUMNS=str(WIDTH))
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
        decision = re.search(rf"^decision: {re.escape(docs[1])}(/decisions/[0-9a-f-]{{36}})$", output, re.MULTILINE)
        assert decision, output
        assert re.search(r"^ +or `mandate replay [0-9a-f]{8}`", output, flags=re.MULTILINE), output
        assert "press Ctrl-C to stop everything" in output  # the demo started the database: it stops it too
        health = httpx.get(f"{docs[1]}/api/health", timeout=10).json()["status"]
        pages = [httpx.get(f"{docs[1]}{path}", timeout=10).status_code for path in ("/", "/docs", decision[1])]
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return {"health": health, "pages": pages, "returncode": process.returncode, "after": rest}


def rows(output: str) -> list[tuple[str, str, str]]:
    """(agent, verdict, explanation) per decision block: a heading line, then the explanation indented below it."""
    found: list[tuple[str, str, list[str]]] = []
    current: list[str] | None = None
    for line in output.splitlines():
        if m := HEADING.match(line):
            current = []
            found.append((m[5], m[1], current))
        elif current is not None and line.startswith(" " * 8):
            current.append(line.strip())
        else:
            current = None
    return [(agent, verdict, " ".join(lines)) for agent, verdict, lines in found]


def assert_table(output: str) -> None:
    found = rows(output)
    assert [(agent, verdict) for agent, verdict, _ in found] == [
        (agent, verdict) for agent, verdict, _ in EXPECTED_ROWS
    ], output
    for (_, _, explanation), (_, _, start) in zip(found, EXPECTED_ROWS, strict=True):
        assert explanation.startswith(start), (explanation, start)


def assert_approval_tour(output: str, url: str) -> None:
    """A PAUSE approved and resumed as ALLOW; a PAUSE acted on without an approval: a finding."""
    tour = output.split("A PAUSE that ends", 1)[1]
    flowing = " ".join(tour.split())
    assert re.search(r"^PAUSE +[0-9a-f]{8}  file\.write: waits for compliance-review$", tour, re.MULTILINE), tour
    assert "approved: compliance-review (approval " in flowing and ", now approved)" in flowing
    assert re.search(r"^ALLOW +[0-9a-f]{8}  file\.write: resumed with it$", tour, re.MULTILINE), tour
    assert "ALLOW by approval " in flowing
    assert re.search(r"^PAUSE +[0-9a-f]{8}  file\.write: expired unanswered, acted on anyway$", tour, re.MULTILINE)
    assert "finding: executed without a valid approval" in flowing and " expired at " in flowing
    with psycopg.connect(url) as conn:
        kinds = conn.execute("SELECT kind FROM mandate.findings").fetchall()
        resolutions = conn.execute("SELECT kind FROM mandate.approval_resolutions ORDER BY kind").fetchall()
    assert kinds == [("unapproved_execution",)]
    assert resolutions in ([("approved",)], [("approved",), ("expired",)])  # expired: if the sweeper ran by then


def assert_reads_at_80_columns(output: str, url: str) -> None:
    """Every line fits, nothing is cut: each stored explanation is there in full (wrapped only at spaces), and each
    policy and scope name of the run appears whole on one line."""
    assert "…" not in output
    too_long = [line for line in output.splitlines() if len(line) > WIDTH]
    assert too_long == []
    with psycopg.connect(url) as conn:
        verdicts = conn.execute(
            "SELECT summary, scope_id, matched_policy_ids, explanation->>'winning_policy_id' "
            "FROM mandate.verdict_events"
        ).fetchall()
    assert len(verdicts) == len(EXPECTED_ROWS) + TOUR_DECISIONS
    flowing = " ".join(output.split())
    names: set[str] = set()
    for summary, scope_id, matched, winner in verdicts:
        if summary.startswith("OBSERVE by governance gap"):  # the tour's `executed` stage: its finding is shown
            continue
        assert " ".join(summary.split()) in flowing, summary
        names.update(n for n in (scope_id, winner, *(matched or ())) if n)
    names.update(p for _, _, start in EXPECTED_ROWS for p in re.findall(r"by ((?:policy|pol)-[\w-]+)", start))
    assert {"config-management.prod.db-admin-tool", "policy-block-unbackedup-drops-v1"} <= names
    for name in names:
        whole = re.compile(rf"(?<![\w.-]){re.escape(name)}(?![\w-]|\.\w)")
        assert any(whole.search(line) for line in output.splitlines()), f"{name} is not whole on any line"


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


def database_runs(data_dir: Path) -> bool:
    status = mandate(data_dir, "db", "status")
    assert status.returncode == 0, status.stderr
    assert f"data:     {data_dir / 'pgdata'}" in status.stdout
    return "running:  yes" in status.stdout


@pytest.mark.slow
def test_demo_sets_up_plays_the_agents_and_can_run_again(data_dir: Path) -> None:
    first = mandate(data_dir, "demo", "--no-serve", "--port", "0", columns=WIDTH)

    assert first.returncode == 0, first.stderr
    assert "demo governance: applied" in first.stdout
    assert_table(first.stdout)
    assert "backup_first == false" in " ".join(first.stdout.split())
    assert re.search(r"`mandate replay [0-9a-f]{8}`", first.stdout) and "`mandate serve`" in first.stdout
    assert "stopped the embedded PostgreSQL the demo started" in first.stdout
    assert not database_runs(data_dir)  # the demo stops the database it started

    url_result = mandate(data_dir, "db", "url")
    assert url_result.returncode == 0, url_result.stderr
    url = url_result.stdout.strip()
    assert_reads_at_80_columns(first.stdout, url)
    assert_approval_tour(first.stdout, url)
    governance = governance_counts(url)
    assert governance["organizations"] == 1 and governance["domains"] == 2 and governance["policy_snapshots"] == 3
    assert decision_count(url) == len(EXPECTED_ROWS) + TOUR_DECISIONS

    second = mandate(data_dir, "demo", "--no-serve", "--port", "0")

    assert second.returncode == 0, second.stderr
    assert "demo governance: already applied, nothing written" in second.stdout
    assert_table(second.stdout)
    assert governance_counts(url) == governance
    assert decision_count(url) == 2 * (len(EXPECTED_ROWS) + TOUR_DECISIONS)  # fresh decision ids each run
    # It ran before the demo: the demo leaves it running, and says how to stop it.
    assert "keeps running" in second.stdout and "`mandate db stop`" in second.stdout
    assert database_runs(data_dir)
    stopped = mandate(data_dir, "db", "stop")
    assert stopped.returncode == 0 and "stopped the embedded PostgreSQL" in stopped.stdout, stopped.stderr
    assert not database_runs(data_dir)

    serving = serve_then_interrupt(data_dir)

    assert serving["health"] == "ok"
    assert serving["pages"] == [200, 200, 200]  # the UI, the API docs and the decision the demo names
    assert serving["returncode"] == 0
    after = str(serving["after"])
    assert "stopped the server" in after and "stopped the embedded PostgreSQL the demo started" in after
    assert not database_runs(data_dir)
    url = mandate(data_dir, "db", "url").stdout.strip()
    assert governance_counts(url) == governance
    assert decision_count(url) == 3 * (len(EXPECTED_ROWS) + TOUR_DECISIONS)


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
