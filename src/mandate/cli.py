"""The `mandate` command. Thin: parse arguments, call the library, print. Only this module knows exit codes.

Exit codes: 0 success; 1 a Mandate error (the message says what to do); 2 usage error.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from mandate.console import err, settings
from mandate.db.url import database_url
from mandate.errors import MandateError
from mandate.migrate.commands import backup_app, migrate_app

app = typer.Typer(help="Mandate: a governance control plane for AI agents.", no_args_is_help=True)
db_app = typer.Typer(help="Where the database is.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(migrate_app, name="migrate")
app.add_typer(backup_app, name="backup")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL in use (starting the embedded server if needed): psql "$(mandate db url)"."""
    print(database_url(settings()))


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 3000,
) -> None:
    """Run the API (and UI) server. Refuses a database whose schema is older than this code needs."""
    from mandate.web.serve import serve as run

    run(database_url(settings()), host, port)


def main(argv: list[str] | None = None) -> Any:
    try:
        return app(args=argv, standalone_mode=True)
    except MandateError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise SystemExit(1) from None
