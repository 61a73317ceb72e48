"""The README's tour and docs/quickstart.md, run word for word as a newcomer would: in order, in a shell, on a fresh
MANDATE_DATA_DIR (never the user's), with each step's output checked.

Each page's commands are read from its fenced blocks, and each test lists the steps it checks: a command added to,
changed in or removed from a page fails the test until the list follows, so the page and the test cannot diverge.
What the test changes, and only that: port 3000 (which may be taken) becomes a free port — `:3000` in URLs, and
`--port` added to `mandate serve` and `mandate demo` — and the README's `<decision-id>` placeholder becomes the id
the agent printed just before. `mandate` and `python` are the installed package's. Every process a test starts is
stopped by its pid, with a deadline; the embedded PostgreSQL with `mandate db stop` (and its postmaster pid).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
QUICKSTART = REPO / "docs" / "quickstart.md"
API = REPO / "docs" / "api.md"
STEP_TIMEOUT_S = 120.0
DEMO_ORG = "550e8400-e29b-41d4-a716-446655440000"


def fenced(markdown: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", markdown, flags=re.MULTILINE | re.DOTALL)


def section(markdown: str, heading: str) -> str:
    """The text of `## heading` up to the next second-level heading."""
    return markdown.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def shell_lines(markdown: str) -> list[str]:
    """The commands of a page in order: each line of its bash blocks, each `$ ` line of its console blocks."""
    found = []
    for language, block in re.findall(r"^```(bash|console)\n(.*?)^```", markdown, flags=re.MULTILINE | re.DOTALL):
        for line in block.splitlines():
            if language == "console" and line.startswith("$ "):
                found.append(line[2:])
            elif language == "bash" and line.strip() and not line.lstrip().startswith("#"):
                found.append(line)
    return found


def command(line: str) -> str:
    """A line without its trailing comment."""
    return re.split(r"\s+#\s", line, maxsplit=1)[0].strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Background:
    """A command left running, its output collected by a thread so the test can wait for a line with a deadline."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.append(line)

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while not ready():
            assert self.process.poll() is None, f"exited ({self.process.returncode}) before {what}:\n{self.output}"
            assert time.monotonic() < deadline, f"no {what} within {STEP_TIMEOUT_S:g} s:\n{self.output}"
            time.sleep(0.1)

    def interrupt(self) -> int:
        """Ctrl-C (SIGINT to its pid); the exit status. Killed if it does not end in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"did not stop on Ctrl-C:\n{self.output}") from None
        self.close()
        return code

    def close(self) -> None:
        self.reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


class Shell:
    """Runs a page's commands in bash, in a scratch working directory, with the environment a newcomer has."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.data_dir = tmp / "data"
        self.cwd = tmp / "work"
        self.cwd.mkdir()
        (self.cwd / "examples").symlink_to(REPO / "examples")  # pages run `python examples/…` from a checkout
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "VIRTUAL_ENV", "COLUMNS")}
        env.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            MANDATE_DATA_DIR=str(self.data_dir),
            MANDATE_URL=f"http://127.0.0.1:{self.port}",  # what the example agents use without --url
            PYTHONUNBUFFERED="1",
        )
        self.env = env
        self.background: list[Background] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def adapt(self, line: str) -> str:
        line = line.replace(":3000", f":{self.port}")
        return re.sub(r"^mandate (serve|demo)\b", rf"mandate \1 --port {self.port}", line)

    def run(self, line: str) -> subprocess.CompletedProcess[str]:
        exported = re.match(r"^export (\w+)=", line)
        if exported:  # a later step runs in the same shell for a reader: keep what the page exports
            name = exported[1]
            result = subprocess.run(
                ["bash", "-c", f'{self.adapt(line)} && printf "%s" "${name}"'],
                cwd=self.cwd,
                env=self.env,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=STEP_TIMEOUT_S,
            )
            if result.returncode == 0:
                self.env[name] = result.stdout
            return subprocess.CompletedProcess(result.args, result.returncode, "", result.stderr)
        return subprocess.run(
            ["bash", "-c", self.adapt(line)],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,  # no terminal, as in CI
            timeout=STEP_TIMEOUT_S,
        )

    def start(self, line: str) -> Background:
        process = subprocess.Popen(
            ["bash", "-c", "exec " + self.adapt(line)],  # exec: the pid is the command's, for Ctrl-C
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        started = Background(process)
        self.background.append(started)
        return started

    def healthy(self) -> bool:
        try:
            status: object = httpx.get(f"{self.base}/api/health", timeout=2).json().get("status")
            return status == "ok"
        except (httpx.HTTPError, ValueError):
            return False

    def close(self) -> None:
        for started in self.background:
            if started.process.poll() is None:
                started.process.kill()
                started.process.wait(timeout=30)
            started.close()
        subprocess.run([sys.executable, "-m", "mandate", "db", "stop"], env=self.env, capture_output=True, timeout=60)
        pid_file = self.data_dir / "pgdata" / "postmaster.pid"
        if pid_file.exists():  # `db stop` failed: stop the postmaster by its pid
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    sh = Shell(tmp_path)
    try:
        yield sh
    finally:
        sh.close()
    assert not (sh.data_dir / "pgdata" / "postmaster.pid").exists(), "the embedded PostgreSQL is still running"


def ok(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    """The step succeeded, without a traceback, and said each of `expected`; returns its stdout."""
    assert result.returncode == 0, (result.args, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    for text in expected:
        assert text in result.stdout, (result.args, text, result.stdout)
    return result.stdout


# -- the README's tour --------------------------------------------------------------------------------------------

README_TOUR = [
    "mandate migrate up",
    "mandate apply --demo",
    "mandate serve",
    "curl -s localhost:3000/api/health",
    "export MANDATE_API_TOKEN=$(mandate token create --org 550e8400-e29b-41d4-a716-446655440000 --all-domains --role agent)",
    "python examples/pause_escalation_agent.py",
    "mandate replay <decision-id>",
    "mandate migrate run 008",
    "mandate db stop",
]


def test_the_readme_tour_works_as_written(shell: Shell) -> None:
    lines = shell_lines(section(README.read_text(), "A five-minute tour"))
    assert [command(line) for line in lines] == README_TOUR
    steps = iter(lines)

    up = ok(shell.run(next(steps)), "applying 001_core_schema", "migration(s); schema version")
    assert "skipping" not in up  # no PostgreSQL notices

    ok(shell.run(next(steps)), "wrote 17 row(s)", "in one transaction")

    server = shell.start(next(steps))
    server.wait_for(shell.healthy, "healthy server")

    health = json.loads(ok(shell.run(next(steps))))
    assert health["status"] == "ok" and health["database"] == "reachable"

    ok(shell.run(next(steps)))  # an agent's token: the server authenticates every request but health
    assert shell.env["MANDATE_API_TOKEN"].startswith("mdt_")

    agent = ok(shell.run(next(steps)), "verdict: BLOCK", "policy-pause-critical-db-ops-v1")
    decision = re.search(r"^decision: ([0-9a-f-]{36})$", agent, flags=re.MULTILINE)
    assert decision, agent

    replay = next(steps)
    assert "<decision-id>" in replay
    replayed = ok(shell.run(replay.replace("<decision-id>", decision[1][:8])), "identical")
    assert decision[1] in replayed  # the prefix found the whole id

    runbook = ok(shell.run(next(steps)), "migration 008 is already applied")
    assert "--yes" not in runbook

    assert server.interrupt() == 0  # Ctrl-C stops the server
    assert not shell.healthy()

    ok(shell.run(next(steps)), "stopped the embedded PostgreSQL")
    assert not (shell.data_dir / "pgdata" / "postmaster.pid").exists()
    assert next(steps, None) is None


# -- docs/quickstart.md ---------------------------------------------------------------------------------------------

NOT_RUN = {  # installing is what the test suite's own environment already did
    "python3 -m venv .venv && . .venv/bin/activate",
    "pip install -e .",
}
QUICKSTART_TOUR = [
    *NOT_RUN,
    "mandate demo",
    "python examples/pre_commit_agent.py --url http://127.0.0.1:3000",
    "mandate apply --dry-run governance/finance.yaml",
    "mandate apply governance/finance.yaml",
    "mandate db status",
    "mandate db start",
    "mandate db url",
    "mandate db stop",
]


def api_examples_with_an_organization() -> list[str]:
    """The URLs of docs/api.md's GET examples that need no id from elsewhere, with the demo organization as $ORG."""
    urls = []
    for block in fenced(API.read_text(), "bash"):
        pattern = r"^curl -s (?:-H \"[^\"]*\" )?\"?(http://localhost:3000/api/[^\"\s]+)\"?"
        for url in re.findall(pattern, block, flags=re.MULTILINE):
            if "…" not in url and "8f14e45f" not in url and "$" not in url.replace("$ORG", ""):
                urls.append(url.replace("$ORG", DEMO_ORG))
    return urls


def test_the_quickstart_works_word_for_word(shell: Shell) -> None:
    page = QUICKSTART.read_text()
    lines = shell_lines(page)
    assert sorted(command(line) for line in lines) == sorted(QUICKSTART_TOUR)
    steps = iter(line for line in lines if line not in NOT_RUN)

    # 2. The demo: serves until Ctrl-C; the next steps run against it.
    demo = shell.start(next(steps))
    demo.wait_for(lambda: "press Ctrl-C" in demo.output, "'press Ctrl-C'")
    assert "BLOCK by policy-block-unbackedup-drops-v1" in demo.output
    assert re.search(rf"^decision: {re.escape(shell.base)}/decisions/[0-9a-f-]{{36}}$", demo.output, re.MULTILINE)
    ok(shell.run(next(steps)), "PAUSE")

    # 3. Your first policy: the bundle the page says to save, checked, then applied.
    bundle = re.split(r"Save this as\s+`governance/finance\.yaml`:", page, maxsplit=1)[1]
    (shell.cwd / "governance").mkdir()
    (shell.cwd / "governance" / "finance.yaml").write_text(fenced(bundle, "yaml")[0])
    ok(shell.run(next(steps)), "dry run: would write", "nothing was written")
    ok(shell.run(next(steps)), "applied governance/finance.yaml")

    # A second organization exists now: docs/api.md's examples name theirs, so they still answer.
    urls = api_examples_with_an_organization()
    assert len(urls) >= 7
    assert all("organization_id=" in url for url in urls if not url.endswith(("/health", "/organizations", "/tokens")))
    for url in urls:
        response = httpx.get(url.replace("localhost:3000", f"127.0.0.1:{shell.port}"), timeout=10)
        assert response.status_code == 200, (url, response.text)

    # 4. Your agent: the page's code prints what the page shows.
    (code,) = fenced(page, "python")
    expected = page.split("It prints:", 1)[1]
    (shell.cwd / "agent.py").write_text(shell.adapt(code))
    assert ok(shell.run("python agent.py")) == fenced(expected, "text")[0]

    # When you are done: Ctrl-C stops the demo, and the embedded PostgreSQL it started.
    assert demo.interrupt() == 0
    assert "stopped the server" in demo.output
    assert "stopped the embedded PostgreSQL the demo started" in demo.output
    ok(shell.run(next(steps)), "running:  no")
    url = ok(shell.run(next(steps)), "running:  pid").split("url:", 1)[1].strip()
    assert ok(shell.run(next(steps))).strip() == url
    ok(shell.run(next(steps)), "stopped the embedded PostgreSQL")
    assert next(steps, None) is None
