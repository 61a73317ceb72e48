"""`mandate demo`: from nothing to a running Mandate with decisions to look at, in one command.

    database (embedded unless DATABASE_URL) → migrate → apply the demo governance → start the server →
    play the example agents through the SDK → table of decisions → serve until Ctrl-C (or exit: --no-serve)

Safe to run again: the data directory and the database are reused, applying the demo governance a second time
writes nothing, and every run's decisions get fresh decision ids.
"""

from __future__ import annotations

import errno
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from mandate.console import out, settings
from mandate.db.connect import connect
from mandate.db.url import database_url
from mandate.errors import MandateError
from mandate.governance.apply import apply_bundle
from mandate.governance.bundle import load_demo_bundle
from mandate.migrate.runner import Runner

if TYPE_CHECKING:
    from mandate.demo.play import Played

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
    from mandate.demo.play import play
    from mandate.demo.scenarios import ORGANIZATION_ID

    listener = _listen(host, port)  # first: a busy port is refused before anything is set up
    try:
        url = _set_up()
    except BaseException:
        listener.close()
        raise
    base = f"http://{_client_host(host)}:{listener.getsockname()[1]}"
    with _serving(url, listener):
        try:
            with MandateClient(base, organization_id=ORGANIZATION_ID) as client:
                played = play(client)
        except SDKError as exc:  # the SDK's errors are not the CLI's: say what failed, without a traceback
            raise MandateError(f"the demo's agents could not play against {base}: {exc}") from exc
        out.print(_table(played))
        if no_serve:
            out.print("the decisions are stored; `mandate serve` shows them at http://127.0.0.1:3000/")
            return
        out.print(f"UI:       {base}/")
        out.print(f"API docs: {base}/docs")
        out.print("serving; press Ctrl-C to stop")
        _wait_for_interrupt()
    out.print("stopped")


def _set_up() -> str:
    """The database (embedded unless DATABASE_URL), migrated, with the demo governance; returns its URL."""
    cfg = settings()
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


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise MandateError(
                f"port {port} on {host} is already in use (another `mandate demo` or `mandate serve`?); "
                "stop it, choose another with --port, or pass --port 0 to pick a free one"
            ) from None
        raise MandateError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    return sock


@contextmanager
def _serving(database_url: str, listener: socket.socket) -> Iterator[None]:
    """Run the API server on `listener` in a thread; stop it gracefully on the way out."""
    import uvicorn

    from mandate.web.app import create_app

    config = uvicorn.Config(
        create_app(database_url), log_level="warning", lifespan="on", access_log=False, timeout_graceful_shutdown=10
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


def _table(played: list[Played]) -> Table:
    table = Table("decision", "agent", "intent", "stage", "verdict", "explanation", title="Decisions of this demo run")
    for p in played:
        v = p.verdict
        # Text, not markup: summaries hold lists in brackets ("in [password, oauth, mfa]").
        table.add_row(
            str(v.decision_id)[:8],
            Text(p.scenario.agent),
            Text(p.scenario.intent),
            Text(v.stage),
            Text(v.verdict, style=VERDICT_STYLE.get(v.verdict, "")),
            Text(v.summary),
        )
    return table


def _client_host(host: str) -> str:
    """Where the demo's own agents connect: loopback when the server listens on every interface."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
