"""Settings, read once from the environment into a typed object. Bad values fail loudly, naming the variable.

| variable                         | meaning                                                         | default            |
|----------------------------------|-----------------------------------------------------------------|--------------------|
| DATABASE_URL                     | PostgreSQL to use; unset → the embedded server                  | (embedded)         |
| MANDATE_DATA_DIR                 | where the embedded server keeps its data                        | per-user data dir  |
| MANDATE_MIGRATION_LOCK_WAIT      | seconds a runner waits for another runner's lock                | 30                 |
| MANDATE_LOCK_TIMEOUT             | PostgreSQL lock_timeout per migration                           | 10s                |
| MANDATE_STATEMENT_TIMEOUT        | PostgreSQL statement_timeout per migration (0 = none)           | 0                  |
| MANDATE_CORS_ORIGINS             | origins allowed to call the API from a browser, comma-separated | none (CORS closed) |

Read elsewhere, at the edges: COLUMNS (the width commands print at, console.py; a terminal's own width otherwise)
and MANDATE_DEBUG (set: an unexpected error shows its traceback instead of one sentence, cli.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from mandate.errors import ConfigError

_DURATION = re.compile(r"^\d+(ms|s|min|h)?$")


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    data_dir: Path
    migration_lock_wait_s: float
    lock_timeout: str
    statement_timeout: str
    cors_origins: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        url = env.get("DATABASE_URL") or None
        if url is not None and not url.startswith(("postgresql://", "postgres://")):
            raise ConfigError(f"DATABASE_URL must start with postgresql:// (got {url.split(':', 1)[0]}://…)")
        data_dir = Path(env.get("MANDATE_DATA_DIR") or platformdirs.user_data_dir("mandate", appauthor=False))
        return cls(
            database_url=url,
            data_dir=data_dir.expanduser(),
            migration_lock_wait_s=_float(env, "MANDATE_MIGRATION_LOCK_WAIT", 30.0),
            lock_timeout=_duration(env, "MANDATE_LOCK_TIMEOUT", "10s"),
            statement_timeout=_duration(env, "MANDATE_STATEMENT_TIMEOUT", "0"),
            cors_origins=_origins(env, "MANDATE_CORS_ORIGINS"),
        )


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a number of seconds (got {raw!r})") from None
    if value < 0:
        raise ConfigError(f"{key} must not be negative (got {raw!r})")
    return value


def _origins(env: Mapping[str, str], key: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in (env.get(key) or "").split(",") if o.strip())
    bad = [o for o in origins if o == "*" or not re.match(r"^https?://[^/\s]+$", o)]
    if bad:
        raise ConfigError(
            f"{key} must list origins such as https://console.example.com (no *, no path); got {bad[0]!r}"
        )
    return origins


def _duration(env: Mapping[str, str], key: str, default: str) -> str:
    raw = env.get(key) or default
    return check_duration(raw, key)


def check_duration(raw: str, name: str) -> str:
    """Validate a PostgreSQL duration such as `10s`, `500ms`, `2min` or `0`; return it unchanged."""
    if not _DURATION.match(raw.strip()):
        raise ConfigError(f"{name} must be a duration like 500ms, 10s, 2min or 0 (got {raw!r})")
    return raw.strip()
