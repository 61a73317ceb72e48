"""`mandate demo`: from nothing to a running Mandate with decisions to look at, in one command.

    database (embedded unless DATABASE_URL) → migrate → apply the demo governance → start the server →
    play the example agents through the SDK → the decisions, explained → serve until Ctrl-C (or exit: --no-serve)

On the way out it stops what it started: the server, and the embedded PostgreSQL when the demo started it (one
that was already running keeps running, and the demo says how to stop it: `mandate db stop`). The data stays.

Safe to run again: the data directory and the database are reused, applying the demo governance a second time
writes nothing, and every run's decisions get fresh decision ids.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from mandate.apply import apply_bundle
from mandate.config import Settings
from mandate.console import out, settings
from mandate.db import embedded
from mandate.db.connect import connect
from mandate.db.url import database_url
from mandate.errors import MandateError
from mandate.governance.bundle import load_demo_bundle
from mandate.listener import listen
from mandate.migrate.runner import Runner

if TYPE_CHECKING:
    from mandate.client import Verdict
    from mandate.demo.play import ApprovalTour, Played

VERDICT_STYLE = {"ALLOW": "green", "PAUSE": "yellow", "BLOCK": "bold red", "OBSERVE": "cyan"}
START_TIMEOUT_S = 30.0


def demo(
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Exit after the table instead of serving until Ctrl-C.")
    ] = False,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port; 0 picks a free one.")] = 3000,
) -> None:
    """Set everything up on this machine and play the example agents: PAUSE, BLOCK, OBSERVE and ALLOW, explained."""
    # The server and the SDK are imported here, not at the top: `mandate --help` should not load a web framework.
    from mandate.client import MandateClient
    from mandate.client import MandateError as SDKError
    from mandate.demo.play import approval_tour, play
    from mandate.demo.scenarios import ORGANIZATION_ID
    from mandate.web.serve import is_loopback

    if not is_loopback(host):
        raise MandateError(
            f"the demo serves without authentication, so only on a loopback address (not {host}); "
            "for a server others can reach, use `mandate serve` with tokens (docs/security.md)"
        )
    cfg = settings()
    # The demo stops the embedded PostgreSQL on the way out if it is the one that starts it.
    started_database = cfg.database_url is None and not embedded.status(cfg.data_dir).running
    listener = listen(host, port)  # a busy port is refused before anything is set up
    try:
        try:
            url = _set_up(cfg)
        except BaseException:
            listener.close()
            raise
        base = f"http://{_client_host(host)}:{listener.getsockname()[1]}"
        with _serving(url, listener):
            out.print(
                Text(
                    f"AUTHENTICATION IS OFF: this demo server answers anyone on this machine ({base}, loopback only); "
                    "`mandate serve` requires API tokens (docs/security.md)",
                    style="bold red",
                )
            )
            try:
                with MandateClient(base, organization_id=ORGANIZATION_ID) as client:
                    played = play(client)
                    tour = approval_tour(client)
            except SDKError as exc:  # the SDK's errors are not the CLI's: say what failed, without a traceback
                raise MandateError(f"the demo's agents could not play against {base}: {exc}") from exc
            out.print(Decisions(played))
            out.print(Approvals(tour))
            example = next((p.verdict for p in played if p.verdict.verdict == "BLOCK"), played[0].verdict)
            short = str(example.decision_id)[:8]
            if no_serve:
                out.print(f"the decisions are stored: `mandate replay {short}` re-evaluates one;")
                out.print(
                    "`mandate serve` serves the UI that shows them all (http://127.0.0.1:3000/, log in with a token)"
                )
            else:
                out.print(f"UI:       {base}/")
                out.print(f"API docs: {base}/docs")
                out.print(f"decision: {base}/decisions/{example.decision_id}")
                out.print(f"          or `mandate replay {short}`: one decision in full, re-evaluated")
                out.print(f"serving; press Ctrl-C to stop {'everything' if started_database else 'the server'}")
                _wait_for_interrupt()
        if not no_serve:
            out.print("stopped the server")
    finally:
        _leave_database(cfg, started_database)


def _leave_database(cfg: Settings, started_here: bool) -> None:
    """Stop the embedded PostgreSQL if the demo started it; otherwise say that it runs and how to stop it."""
    if cfg.database_url is not None:
        return
    if started_here:
        if embedded.stop(cfg.data_dir) is not None:
            out.print(Text(f"stopped the embedded PostgreSQL the demo started (its data stays in {cfg.data_dir})"))
    elif embedded.status(cfg.data_dir).running:
        out.print("the embedded PostgreSQL keeps running (it ran before the demo): `mandate db stop` stops it")


def _set_up(cfg: Settings) -> str:
    """The database (embedded unless DATABASE_URL), migrated, with the demo governance; returns its URL."""
    url = database_url(cfg)
    with connect(url, application="mandate demo") as conn:
        applied = Runner(
            conn,
            lock_wait_s=cfg.migration_lock_wait_s,
            lock_timeout=cfg.lock_timeout,
            statement_timeout=cfg.statement_timeout,
        ).up()
        result = apply_bundle(conn, load_demo_bundle())
    where = "your DATABASE_URL" if cfg.database_url else f"the embedded PostgreSQL in {cfg.data_dir}"
    out.print(f"database: {where}; {len(applied)} migration(s) applied now" if applied else f"database: {where}")
    if result.nothing_to_apply:
        out.print("demo governance: already applied, nothing written")
    else:
        out.print(f"demo governance: applied ({result.rows_written} rows)")
    return url


@contextmanager
def _serving(database_url: str, listener: socket.socket) -> Iterator[None]:
    """Run the API server on `listener` in a thread; stop it gracefully on the way out."""
    import uvicorn

    from mandate.web.app import create_app

    config = uvicorn.Config(
        create_app(database_url, auth=False),
        log_level="warning",
        lifespan="on",
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="mandate-demo-server")
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)  # uvicorn offers no event for "started": poll its flag
        if not server.started:
            raise MandateError("the demo server did not start; run `mandate serve` to see why")
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        listener.close()


def _wait_for_interrupt() -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM. Both are handled here, so this also works where SIGINT was ignored
    on start (a background job of a non-interactive shell)."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


INDENT = 8


def _block(console: Console, options: ConsoleOptions, heading: Text, body: Text) -> RenderResult:
    """One block: the heading, then `body` wrapped below it at spaces (names are never cut), indented."""
    yield heading
    margin = Text(" " * INDENT)
    for line in body.wrap(console, max(options.max_width - INDENT, 20)):
        line.rstrip()  # the space a line was broken at
        yield margin + line


def _heading(v: Verdict, *rest: str | tuple[str, str]) -> Text:
    return Text.assemble(
        (f"{v.verdict:<{INDENT}}", VERDICT_STYLE.get(v.verdict, "")), (str(v.decision_id)[:8], "cyan"), "  ", *rest
    )


class Decisions:
    """The decisions of a run, one block each: verdict, decision id (its first 8 characters, which `mandate replay`
    takes), what was asked, and the explanation wrapped below. It reads at any width from 60 columns: only the
    explanation wraps, at spaces, so policy and scope names are never cut."""

    def __init__(self, played: list[Played]) -> None:
        self.played = played

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text("Decisions of this demo run", style="bold")
        for p in self.played:
            v = p.verdict
            heading = _heading(v, (p.scenario.intent, "bold"), f" ({v.stage}) by {p.scenario.agent}")
            # Text, not markup: summaries hold lists in brackets ("in [password, oauth, mfa]").
            explanation = Text(v.summary)
            others = [policy for policy in v.matched_policy_ids if policy != v.winning_policy_id]
            if others:  # outranked by the winner, still part of the answer
                explanation.append(f"\n(also matched: {', '.join(others)})", style="dim")
            yield from _block(console, options, heading, explanation)
            yield Text()


class Approvals:
    """The approval tour, in the same blocks: a PAUSE approved and resumed as ALLOW, and a PAUSE the agent acted on
    without an approval, which became a finding."""

    def __init__(self, tour: ApprovalTour) -> None:
        self.tour = tour

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        t = self.tour
        intent = (t.scenario.intent, "bold")
        approved = ", ".join(r.requirement for r in t.approval.requirements if r.satisfied) or "nothing"
        yield Text("A PAUSE that ends (docs/approvals.md)", style="bold")
        waits = f": waits for {', '.join(t.paused.pause_requires)}"
        paused = Text(t.paused.summary)
        paused.append(f"\napproved: {approved} (approval {str(t.paused.approval_id)[:8]}, now {t.approval.state})")
        yield from _block(console, options, _heading(t.paused, intent, waits), paused)
        yield from _block(console, options, _heading(t.resumed, intent, ": resumed with it"), Text(t.resumed.summary))
        yield Text()
        ignored = f": {t.ignored_approval.state} unanswered, acted on anyway"
        yield from _block(console, options, _heading(t.ignored, intent, ignored), Text(t.ignored.summary))
        # Its own verdict is a governance gap (no spec governs `executed` stages of file.write): what matters is
        # the finding, on its timeline, in /api/findings and on the UI's Findings page.
        executed = Text(t.finding, style="bold red")
        yield from _block(console, options, _heading(t.executed, intent, ": reported executed"), executed)
        yield Text()


def _client_host(host: str) -> str:
    """Where the demo's own agents connect: loopback when the server listens on every interface."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
