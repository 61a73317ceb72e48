"""`mandate serve`: check the schema, then run the app with uvicorn (graceful shutdown on SIGINT/SIGTERM).

Authentication is on unless `auth=False` (`--insecure-no-auth`), which is refused unless `host` is a loopback
address.

With `workers` > 1, uvicorn runs that many server processes on the one listening socket; each builds its own app
(pool, governance cache, LISTEN connection) from `from_environment`, which reads the database URL this function puts
in the environment.
"""

from __future__ import annotations

import ipaddress
import os

import uvicorn
from fastapi import FastAPI

from mandate.db.connect import connect
from mandate.errors import ConfigError, SchemaTooOld
from mandate.migrate import runner
from mandate.migrate.files import head_version
from mandate.web import connections, logs
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


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    database_url: str,
    host: str,
    port: int,
    *,
    workers: int = 1,
    log_level: str = "info",
    auth: bool = True,
    cors_origins: tuple[str, ...] = (),
) -> None:
    if workers < 1:
        raise ValueError(f"workers must be at least 1 (got {workers})")
    if not auth and not is_loopback(host):
        raise ConfigError(
            f"--insecure-no-auth is refused on {host}: without authentication anyone who reaches the port may read "
            "and send everything; bind a loopback address (127.0.0.1) or issue tokens (mandate token create)"
        )
    check_schema(database_url)
    common: dict[str, object] = {
        "host": host,
        "port": port,
        "log_config": logs.configure(log_level.upper()),
        "timeout_graceful_shutdown": 10,
        "access_log": False,
        **connections.server_options(),  # header/body/idle timeouts and a connection cap
    }
    if workers == 1:
        uvicorn.run(create_app(database_url, auth=auth, cors_origins=cors_origins), **common)  # type: ignore[arg-type]
        return
    os.environ[URL_VARIABLE] = database_url  # inherited by the worker processes, read by from_environment
    os.environ[AUTH_VARIABLE] = "on" if auth else "off"
    os.environ[CORS_VARIABLE] = ",".join(cors_origins)
    uvicorn.run(f"{__name__}:from_environment", factory=True, workers=workers, **common)  # type: ignore[arg-type]


URL_VARIABLE = "MANDATE_SERVE_DATABASE_URL"
AUTH_VARIABLE = "MANDATE_SERVE_AUTH"
CORS_VARIABLE = "MANDATE_SERVE_CORS_ORIGINS"


def from_environment() -> FastAPI:
    """The app of one worker process (uvicorn's factory). Authentication is off only when the parent said so."""
    origins = tuple(o for o in os.environ.get(CORS_VARIABLE, "").split(",") if o)
    return create_app(os.environ[URL_VARIABLE], auth=os.environ.get(AUTH_VARIABLE) != "off", cors_origins=origins)
