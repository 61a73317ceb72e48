"""`mandate serve`: check the schema, then run the app with uvicorn (graceful shutdown on SIGINT/SIGTERM)."""

from __future__ import annotations

import uvicorn

from mandate.db.connect import connect
from mandate.errors import SchemaTooOld
from mandate.migrate import runner
from mandate.migrate.files import head_version
from mandate.web import logs
from mandate.web.app import create_app


def check_schema(database_url: str) -> int:
    """The database's schema version; SchemaTooOld (naming the command to run) when older than the code needs."""
    with connect(database_url, application="mandate serve (schema check)") as conn:
        st = runner.status(conn)
    need = head_version()
    if st.current_version < need:
        raise SchemaTooOld(
            f"the database schema is at version {st.current_version:03d}, this Mandate needs {need:03d}: "
            "run `mandate migrate up` (or `mandate migrate run 008` for a legacy database) first"
        )
    return st.current_version


def serve(database_url: str, host: str, port: int, *, log_level: str = "info") -> None:
    check_schema(database_url)
    uvicorn.run(
        create_app(database_url),
        host=host,
        port=port,
        log_config=logs.configure(log_level.upper()),
        timeout_graceful_shutdown=10,
        access_log=False,
    )
