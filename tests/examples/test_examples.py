"""Each example agent, run as a script (as a user would) against a live server with the demo governance."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.client.conftest import DemoServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(script: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MANDATE_URL"}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--url", url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "PYTHONIOENCODING": "utf-8"},
    )


def verdicts(output: str) -> list[str]:
    return re.findall(r"^verdict: (\w+)$", output, flags=re.MULTILINE)


def explanations(output: str) -> list[str]:
    return re.findall(r"^explanation: (.+)$", output, flags=re.MULTILINE)


def outcome_count(server: DemoServer) -> int:
    return server.count("SELECT count(*) FROM mandate.audit_timeline_entries WHERE summary LIKE 'outcome reported%'")


def test_pre_commit_agent_is_paused(demo_server: DemoServer) -> None:
    result = run("pre_commit_agent.py", demo_server.url)

    assert result.returncode == 0, result.stderr
    assert verdicts(result.stdout) == ["PAUSE"]
    assert explanations(result.stdout) == [
        "PAUSE by policy-pause-large-files-v1 (scope config-management.prod.config-writer, owner config-team): "
        "content_length >= 1048576 (actual 2500000)"
    ]
    assert "not writing: waiting for compliance-review" in result.stdout


def test_pause_escalation_agent_is_blocked_and_prints_both_policies(demo_server: DemoServer) -> None:
    result = run("pause_escalation_agent.py", demo_server.url)

    assert result.returncode == 0, result.stderr
    assert verdicts(result.stdout) == ["BLOCK"]
    assert explanations(result.stdout) == [
        "BLOCK by policy-block-unbackedup-drops-v1 (scope config-management.prod.db-admin-tool, owner dba-team): "
        "backup_first == false"
    ]
    assert "matched policies: policy-block-unbackedup-drops-v1, policy-pause-critical-db-ops-v1" in result.stdout
    assert "not dropping production.users: blocked" in result.stdout


def test_observe_agent_is_observed_and_reports_outcomes(demo_server: DemoServer) -> None:
    result = run("observe_agent.py", demo_server.url)

    assert result.returncode == 0, result.stderr
    assert verdicts(result.stdout) == ["OBSERVE", "OBSERVE", "OBSERVE"]
    assert [e.split(" (")[0] for e in explanations(result.stdout)] == [
        "OBSERVE by policy-observe-user-login-v1",
        "OBSERVE by policy-observe-data-exports-v1",
        "OBSERVE by policy-observe-config-updates-v1",
    ]
    assert result.stdout.count("outcome reported for decision") == 3
    assert outcome_count(demo_server) == 3


def test_support_reply_guard_blocks_pauses_and_allows(demo_server: DemoServer) -> None:
    result = run("support_reply_guard.py", demo_server.url)

    assert result.returncode == 0, result.stderr
    assert verdicts(result.stdout) == ["BLOCK", "PAUSE", "ALLOW"]
    assert [e.split(" (")[0] for e in explanations(result.stdout)] == [
        "BLOCK by pol-refund-002",
        "PAUSE by pol-refund-001",
        "ALLOW by default of spec spec-refund-v1@1.1.0: no policy matched",
    ]
    sent = re.findall(r"→ to (customer:\w+): (.+)$", result.stdout, flags=re.MULTILINE)
    assert [customer for customer, _ in sent] == ["customer:C123456", "customer:C234567", "customer:C345678"]
    assert "unable to process" in sent[0][1]
    assert "a specialist will review your request" in sent[1][1]
    assert sent[2][1] == "Your seat is 14C and boarding starts at 9:40."
    assert outcome_count(demo_server) == 3
    assert (
        demo_server.count(
            "SELECT count(*) FROM mandate.decision_events WHERE domain = 'customer-support' AND actor = 'chatbot-v3'"
        )
        == 3
    )


@pytest.mark.parametrize(
    "script", ["pre_commit_agent.py", "pause_escalation_agent.py", "observe_agent.py", "support_reply_guard.py"]
)
def test_an_unreachable_server_is_an_error_message_and_exit_1(script: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    result = run(script, f"http://127.0.0.1:{port}")

    assert result.returncode == 1
    assert result.stderr.startswith("error: Mandate at http://127.0.0.1:")
    assert "Traceback" not in result.stderr
