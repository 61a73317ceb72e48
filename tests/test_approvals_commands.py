"""`mandate approvals list|show|approve|reject|withdraw` against a running server and real PostgreSQL: an approver
works the queue from the command line; refusals are one sentence and exit code 1, usage errors exit code 2."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from uuid import UUID, uuid4

import pytest

from mandate.cli import main
from mandate.demo import scenarios as s
from tests.client.conftest import People, serve_people
from tests.client.test_approvals import DROP
from tests.helpers import run_cli


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def error(self) -> str:
        return " ".join(self.stderr.split())


Mandate = Callable[..., Run]


@pytest.fixture
def people(db_url: str) -> Iterator[People]:
    with serve_people(db_url) as p:
        yield p


@pytest.fixture
def mandate(people: People, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Mandate:
    """`mandate(*args, as_="alice")`: the console script in this process, with MANDATE_URL set to the server and
    MANDATE_API_TOKEN to that person's token."""
    monkeypatch.setenv("MANDATE_URL", people.url)
    monkeypatch.delenv("MANDATE_API_TOKEN", raising=False)

    def run(*args: str, as_: str | None = "alice") -> Run:
        if as_ is None:
            monkeypatch.delenv("MANDATE_API_TOKEN", raising=False)
        else:
            monkeypatch.setenv("MANDATE_API_TOKEN", people.secrets[as_])
        return console(capsys, *args)

    return run


def console(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    """`mandate approvals …` in this process, as the console script runs it (exit codes included)."""
    capsys.readouterr()
    try:
        main(["approvals", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return Run(code, captured.out, captured.err)


def pause(people: People) -> UUID:
    with people.client("agent") as agent:
        verdict = agent.decide(DROP.intent, DROP.stage, **DROP.decide_args())
    assert verdict.paused and verdict.approval_id is not None
    return verdict.approval_id


def test_an_approver_lists_shows_and_approves_from_the_command_line(people: People, mandate: Mandate) -> None:
    first, second = pause(people), pause(people)

    listed = mandate("list")
    assert listed.code == 0, listed.stderr
    assert str(first) in listed.stdout and str(second) in listed.stdout
    assert "database.drop_table by pause-escalation-agent on production.sessions" in listed.stdout
    assert "dba-approval, compliance-review" in listed.stdout and "in 1 h 59 min" in listed.stdout
    as_json = json.loads(mandate("list", "--json").stdout)
    assert [(a["approval_id"], a["state"]) for a in as_json] == [(str(first), "pending"), (str(second), "pending")]
    assert json.loads(mandate("list", "--json", "--limit", "1").stdout)[0]["approval_id"] == str(first)

    shown = mandate("show", str(first))
    assert shown.code == 0, shown.stderr
    for line in (
        f"approval   {first}  PENDING",
        "action     database.drop_table by pause-escalation-agent on production.sessions",
        'signals    backup_first=true, reversible=false, risk_level="critical"',
        "authority  scope config-management.prod.db-admin-tool, owner dba-team",
        "requires   dba-approval: waiting",
        "           compliance-review: waiting",
        "events     none yet",
    ):
        assert line in shown.stdout, (line, shown.stdout)
    assert "expires    20" in shown.stdout and " min)" in shown.stdout

    half = mandate("approve", str(first), "--requirement", "dba-approval", "--reason", "backup verified")
    assert half.code == 0, half.stderr
    assert f"approval {first} is still pending: waiting for compliance-review" in half.stdout
    done = mandate("approve", str(first), "--requirement", "compliance-review", as_="bob")
    assert f"approval {first} is approved: the agent may resume with it, once" in done.stdout

    shown = mandate("show", str(first))
    assert "requires   dba-approval: satisfied by dba-alice" in shown.stdout
    assert "           compliance-review: satisfied by compliance-bob" in shown.stdout
    assert "approved dba-approval by dba-alice: backup verified" in shown.stdout
    assert json.loads(mandate("show", str(first), "--json").stdout)["state"] == "approved"

    rejected = mandate("reject", str(second), "--reason", "not this week", as_="bob")
    assert f"approval {second} is rejected: the agent must not proceed" in rejected.stdout
    assert mandate("list").stdout.strip() == "no pending approval requests"
    assert [a["approval_id"] for a in json.loads(mandate("list", "--state", "rejected", "--json").stdout)] == [
        str(second)
    ]
    with people.client("agent") as agent:
        assert agent.approvals.get(second).state == "rejected"


def test_the_agent_withdraws_its_own_request(people: People, mandate: Mandate) -> None:
    approval_id = pause(people)
    assert mandate("withdraw", str(approval_id), as_="alice").code == 1  # an approver does not withdraw
    withdrawn = mandate("withdraw", str(approval_id), "--reason", "not needed", as_="agent")
    assert withdrawn.code == 0, withdrawn.stderr
    assert f"approval {approval_id} is withdrawn: nobody can resume with it" in withdrawn.stdout


def test_refusals_are_one_sentence_with_exit_code_1(people: People, mandate: Mandate) -> None:
    approval_id = pause(people)
    assert mandate("reject", str(approval_id)).code == 0

    late = mandate("approve", str(approval_id), "--requirement", "dba-approval")
    assert late.code == 1
    assert late.error == f"error: cannot approve approval {approval_id}: it is rejected (rejected)"
    needed = mandate("approve", str(pause(people)))
    assert needed.code == 1 and needed.error.endswith("say which one this approval satisfies (requirement_needed)")
    role = mandate("reject", str(approval_id), as_="reader")
    assert role.code == 1 and "approve and reject take an approver or admin token" in role.error
    anonymous = mandate("list", as_=None)
    assert anonymous.code == 1 and "refused the request" in anonymous.error and "MANDATE_API_TOKEN" in anonymous.error
    missing = mandate("show", str(uuid4()))
    assert missing.code == 1 and "does not exist" in missing.error
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    gone = mandate("list", "--url", f"http://127.0.0.1:{closed}")
    assert gone.code == 1 and "could not be reached" in gone.error and "mandate serve" in gone.error


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("show", "not-an-id"), "not a UUID: 'not-an-id'"),
        (("list", "--state", "waiting"), "'waiting' is not one of pending"),
        (("list", "--url", "ftp://example.com"), "base_url must start with http://"),
        (("list", "--org", "acme"), "not a UUID: 'acme'"),
    ],
)
def test_usage_errors_name_the_argument_with_exit_code_2(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], named: str
) -> None:
    result = console(capsys, *args)  # refused before anything is sent: no server needed
    assert result.code == 2
    assert named in result.error


def test_the_console_script_reads_the_url_and_token_from_the_environment(people: People) -> None:
    approval_id = pause(people)
    env = {"MANDATE_URL": people.url, "MANDATE_API_TOKEN": people.secrets["reader"]}
    result = run_cli("approvals", "list", "--json", "--domain", s.CONFIG_DOMAIN, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert [a["approval_id"] for a in json.loads(result.stdout)] == [str(approval_id)]
