"""The server's log (web/logs.py): every line on stderr is one JSON object, whoever wrote it — Mandate, uvicorn,
psycopg's pool, asyncio, Python warnings — and a message repeated while the database is down is written once."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

from mandate.web import logs
from mandate.web.logs import Repeats

EMIT = """
import asyncio, logging, logging.config, warnings
from mandate.web import logs
logging.config.dictConfig(logs.configure())
for _ in range(30):
    logging.getLogger("psycopg.pool").warning("error connecting in %r: %s", "pool-1", "connection refused")
logging.getLogger("asyncio").error("socket.accept() out of system resource")
logging.getLogger("uvicorn.error").info("Started server process [1]")
logging.getLogger("mandate.access").info("request", extra={"method": "GET", "path": "/", "status": 200})
logging.getLogger("some.library").warning("a library of ours never configured")
warnings.warn("a deprecated call", UserWarning, stacklevel=1)
"""


def test_every_line_on_stderr_is_json_whoever_logs_it() -> None:
    run = subprocess.run([sys.executable, "-c", EMIT], capture_output=True, text=True, timeout=60, check=True)
    lines = run.stderr.splitlines()
    entries = [json.loads(line) for line in lines]  # raises on the first line that is not JSON
    by_logger = {e["logger"]: e for e in entries}
    assert set(by_logger) == {
        "psycopg.pool",
        "asyncio",
        "uvicorn.error",
        "mandate.access",
        "some.library",
        "py.warnings",
    }
    assert [e["logger"] for e in entries].count("psycopg.pool") == 1  # 30 repeats written once
    assert "a deprecated call" in by_logger["py.warnings"]["message"]
    assert by_logger["mandate.access"]["status"] == 200
    assert run.stdout == ""


def test_a_repeated_message_is_written_once_per_period_with_the_count_it_stands_for() -> None:
    repeats = Repeats(every=0.2)
    record = logging.LogRecord("psycopg.pool", logging.WARNING, __file__, 1, "error connecting in %r", ("p",), None)
    passed = [repeats.filter(record) for _ in range(50)]
    assert passed.count(True) == 1
    time.sleep(0.25)
    assert repeats.filter(record)
    assert record.repeated == 49  # type: ignore[attr-defined]  # set by the filter
    other = logging.LogRecord("psycopg.pool", logging.WARNING, __file__, 1, "another message", (), None)
    assert repeats.filter(other)


def test_the_configuration_sends_every_logger_through_the_one_json_handler() -> None:
    config = logs.configure()
    assert config["root"]["handlers"] == ["stderr"]
    assert all(c["handlers"] in (["stderr"], []) for c in config["loggers"].values())
    assert config["loggers"]["uvicorn.access"]["handlers"] == []  # Mandate writes its own access line
