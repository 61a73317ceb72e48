"""The `mandate` command. Thin: parse arguments, call the library, print. Only this module knows exit codes.

Exit codes: 0 success; 1 a Mandate error (the message says what to do); 2 usage error.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mandate.console import err, out, settings
from mandate.db.url import database_url
from mandate.demo.command import demo
from mandate.errors import MandateError
from mandate.governance.commands import apply
from mandate.governance.commands import check as governance_check
from mandate.migrate.commands import backup_app, migrate_app

app = typer.Typer(help="Mandate: a governance control plane for AI agents.", no_args_is_help=True)
db_app = typer.Typer(help="Where the database is.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(migrate_app, name="migrate")
app.add_typer(backup_app, name="backup")
app.command("apply")(apply)
governance_app = typer.Typer(help="Governance as stored: what the server can and cannot use.", no_args_is_help=True)
governance_app.command("check")(governance_check)
app.add_typer(governance_app, name="governance")
app.command("demo")(demo)


@db_app.command("url")
def db_url() -> None:
    """Print the database URL in use (starting the embedded server if needed): psql "$(mandate db url)"."""
    print(database_url(settings()))


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
) -> None:
    """Run the API (and UI) server. Refuses a database whose schema is older than this code needs."""
    from mandate.web.serve import serve as run

    run(database_url(settings()), host, port, workers=workers)


@app.command("replay")
def replay(decision_id: Annotated[str, typer.Argument(help="The decision to re-evaluate.")]) -> None:
    """Re-evaluate a stored decision with its stored spec version, signals and snapshot; exit 1 if it differs."""
    import asyncio
    import uuid

    from mandate.replay import replay_decision

    try:
        key = uuid.UUID(decision_id)
    except ValueError:
        raise MandateError(f"decision id must be a UUID (got {decision_id!r})") from None
    results = asyncio.run(replay_decision(database_url(settings()), key))
    for r in results:
        if not r.replayable:  # history no evaluator of ours decided: said, not an error
            out.print(f"{r.decision_id} {r.stage}: stored {r.stored_verdict} — not replayable: {r.reason}")
            continue
        mark = "[green]identical[/]" if r.identical else f"[red]DIFFERENT[/] ({', '.join(r.differences)})"
        out.print(f"{r.decision_id} {r.stage}: stored {r.stored_verdict}, replayed {r.replayed_verdict} — {mark}")
        out.print(f"  {r.replayed_summary}")
    if not all(r.identical for r in results if r.replayable):
        raise typer.Exit(1)


def main(argv: list[str] | None = None) -> Any:
    try:
        return app(args=argv, standalone_mode=True)
    except MandateError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise SystemExit(1) from None
