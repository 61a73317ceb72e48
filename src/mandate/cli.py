"""The `mandate` command. Thin: parse arguments, call the library, print. Only this module knows exit codes.

Exit codes: 0 success; 1 a Mandate error (the message says what to do); 2 usage error (the message names the
argument); 70 a bug in Mandate (one line says so; MANDATE_DEBUG=1 shows the traceback); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import psycopg
import typer
from rich.text import Text

import mandate
from mandate.approvals_commands import approvals_app
from mandate.auth_commands import roles_app, token_app
from mandate.console import err, out, settings
from mandate.db import embedded
from mandate.db.url import database_url
from mandate.demo.command import demo
from mandate.errors import MandateError, ReportedFailure
from mandate.export import export_command
from mandate.governance_commands import apply
from mandate.governance_commands import check as governance_check
from mandate.listener import listen
from mandate.migrate_commands import backup_app, migrate_app
from mandate.shadow.commands import shadow_command
from mandate.webhook_commands import webhooks_app

app = typer.Typer(help="Mandate: a governance control plane for AI agents.", no_args_is_help=True)
db_app = typer.Typer(help="Where the database is; start, stop and inspect the embedded one.", no_args_is_help=True)
app.add_typer(db_app, name="db")
db_app.add_typer(roles_app, name="roles")
app.add_typer(token_app, name="token")
app.add_typer(approvals_app, name="approvals")
app.add_typer(migrate_app, name="migrate")
app.add_typer(backup_app, name="backup")
app.add_typer(webhooks_app, name="webhooks")
app.command("apply")(apply)
governance_app = typer.Typer(help="Governance as stored: what the server can and cannot use.", no_args_is_help=True)
governance_app.command("check")(governance_check)
app.add_typer(governance_app, name="governance")
app.command("demo")(demo)
app.command("shadow")(shadow_command)
app.command("export")(export_command)


def _version(value: bool) -> None:
    if value:
        print(f"mandate {mandate.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Mandate: a governance control plane for AI agents."""


@db_app.command("url")
def db_url() -> None:
    """Print the database URL in use (starting the embedded server if needed): psql "$(mandate db url)"."""
    print(database_url(settings()))


@db_app.command("status")
def db_status() -> None:
    """Say where the embedded PostgreSQL keeps its data, whether it runs (its pid) and its URL; start nothing."""
    cfg = settings()
    st = embedded.status(cfg.data_dir)
    out.print(Text(f"data:     {st.pgdata}" + ("" if st.initialised else " (not created yet)")))
    if st.running:
        out.print(f"running:  yes, pid {st.pid}")
        out.print(Text(f"url:      {st.url}"))
        out.print("stop it with `mandate db stop` (the data stays)")
    else:
        out.print("running:  no; `mandate db start` (or any command that needs it) starts it")
    if cfg.database_url is not None:
        out.print("DATABASE_URL is set: commands use that database, not this embedded one")


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL (or find it running) and print its URL."""
    cfg = settings()
    url = embedded.start(cfg.data_dir)
    st = embedded.status(cfg.data_dir)
    out.print(Text(f"running:  pid {st.pid}, data in {st.pgdata}"))
    out.print(Text(f"url:      {url}"))
    if cfg.database_url is not None:
        out.print("DATABASE_URL is set: commands use that database, not this embedded one")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL (a fast shutdown: open sessions end). The data stays; `mandate db start` or any
    command that needs the database starts it again."""
    cfg = settings()
    pid = embedded.stop(cfg.data_dir)
    if pid is None:
        out.print(Text(f"the embedded PostgreSQL of {cfg.data_dir} is not running: nothing to stop"))
    else:
        out.print(Text(f"stopped the embedded PostgreSQL (pid {pid}); its data stays in {cfg.data_dir / 'pgdata'}"))


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 3000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            envvar="MANDATE_WORKERS",
            help="Server processes sharing the port, each with its own connection pool (one per core is a good start).",
        ),
    ] = 1,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Serve without authentication: everyone who reaches the port may do everything. Loopback only.",
        ),
    ] = False,
) -> None:
    """Run the API (and UI) server. Refuses a database whose schema is older than this code needs. Every request
    needs an API token (`mandate token create`) unless --insecure-no-auth on a loopback address."""
    from mandate.db import roles
    from mandate.db.connect import connect
    from mandate.web.serve import is_loopback
    from mandate.web.serve import serve as run

    if insecure_no_auth and not is_loopback(host):
        raise typer.BadParameter(
            f"refused on {host}: without authentication anyone who reaches the port may read and send everything; "
            "bind 127.0.0.1, or issue tokens with `mandate token create`",
            param_hint="--insecure-no-auth",
        )
    listen(host, port).close()  # a busy port is refused here, in a sentence, before anything starts
    cfg = settings()
    url = database_url(cfg)
    with connect(url, application="mandate serve (privilege check)") as conn:
        for warning in roles.privilege_warnings(conn):
            err.print(
                Text.assemble(
                    ("warning:", "yellow"),
                    f" {warning}; `mandate db roles create` makes a role that cannot (docs/security.md)",
                )
            )
    if insecure_no_auth:
        err.print(
            Text(
                "AUTHENTICATION IS OFF (--insecure-no-auth): every request may read and send everything. "
                f"Loopback only ({host}); never expose this port.",
                style="bold red",
            )
        )
    run(url, host, port, workers=workers, auth=not insecure_no_auth, cors_origins=cfg.cors_origins)


@app.command("replay")
def replay(
    decision_id: Annotated[
        str, typer.Argument(help="The decision to re-evaluate: its id, or the first characters of it (ee860bd9).")
    ],
) -> None:
    """Re-evaluate a stored decision with its stored spec version, signals and snapshot; exit 1 if it differs."""
    import asyncio

    from mandate.replay import Replay, replay_decision, resolve_decision_id

    url = database_url(settings())

    async def resolve_and_replay() -> list[Replay]:
        return await replay_decision(url, await resolve_decision_id(url, decision_id))

    results = asyncio.run(resolve_and_replay())
    for r in results:
        if not r.replayable:  # history no evaluator of ours decided: said, not an error
            out.print(f"{r.decision_id} {r.stage}: stored {r.stored_verdict} — not replayable: {r.reason}")
            continue
        mark = "[green]identical[/]" if r.identical else f"[red]DIFFERENT[/] ({', '.join(r.differences)})"
        out.print(f"{r.decision_id} {r.stage}: stored {r.stored_verdict}, replayed {r.replayed_verdict} — {mark}")
        out.print(Text(f"  {r.replayed_summary}"))
    if not all(r.identical for r in results if r.replayable):
        raise ReportedFailure("a replayed verdict differs from the stored one")


def main(argv: list[str] | None = None) -> Any:
    """The console script. Every error ends as one or two sentences on stderr and a non-zero exit code."""
    try:
        return app(args=argv, prog_name="mandate", standalone_mode=True)
    except ReportedFailure:  # the command has printed what failed
        raise SystemExit(1) from None
    except MandateError as exc:
        _error(str(exc))
        raise SystemExit(1) from None
    except psycopg.Error as exc:  # a database error no layer below translated
        _error(f"the database refused the request: {_first_line(exc)}")
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        _error("interrupted")
        raise SystemExit(130) from None
    except Exception as exc:
        if os.environ.get("MANDATE_DEBUG"):
            raise
        _error(
            f"unexpected {type(exc).__name__}: {_first_line(exc)}. This is a bug in Mandate: "
            "run the command again with MANDATE_DEBUG=1 to see where it happened, and report it."
        )
        raise SystemExit(70) from None


def _error(message: str) -> None:
    err.print(Text.assemble(("error:", "red"), " ", message))  # Text: messages hold brackets, never markup


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
