"""Where the database is: DATABASE_URL when set, otherwise the embedded server."""

from __future__ import annotations

from mandate.config import Settings
from mandate.db import embedded


def database_url(settings: Settings) -> str:
    if settings.database_url is not None:
        return settings.database_url
    return embedded.start(settings.data_dir)
