"""Settings come from the environment once, and a bad value names its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from mandate.config import Settings
from mandate.errors import ConfigError


def test_defaults_use_the_embedded_server_in_a_per_user_directory() -> None:
    s = Settings.from_env({})
    assert s.database_url is None
    assert "mandate" in str(s.data_dir)
    assert (s.migration_lock_wait_s, s.lock_timeout, s.statement_timeout) == (30.0, "10s", "0")


def test_values_are_read_from_the_environment(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u@h/db",
            "MANDATE_DATA_DIR": str(tmp_path),
            "MANDATE_MIGRATION_LOCK_WAIT": "2.5",
            "MANDATE_LOCK_TIMEOUT": "500ms",
            "MANDATE_STATEMENT_TIMEOUT": "30min",
        }
    )
    assert (s.database_url, s.data_dir, s.migration_lock_wait_s) == ("postgresql://u@h/db", tmp_path, 2.5)
    assert (s.lock_timeout, s.statement_timeout) == ("500ms", "30min")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("DATABASE_URL", "sqlite:///x.db", "DATABASE_URL must start with postgresql://"),
        ("MANDATE_MIGRATION_LOCK_WAIT", "soon", "MANDATE_MIGRATION_LOCK_WAIT must be a number"),
        ("MANDATE_MIGRATION_LOCK_WAIT", "-1", "must not be negative"),
        ("MANDATE_LOCK_TIMEOUT", "10 seconds", "MANDATE_LOCK_TIMEOUT must be a duration"),
        ("MANDATE_STATEMENT_TIMEOUT", "1; DROP TABLE x", "MANDATE_STATEMENT_TIMEOUT must be a duration"),
    ],
)
def test_bad_values_name_the_variable(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({key: value})
