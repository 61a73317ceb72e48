"""Structured JSON logs, one object per line. Never bodies, signal values or free text: only what a record's
`extra` carries plus the message.

Every logger writes through the one JSON handler — Mandate's, uvicorn's, and through the root logger every other
(psycopg's pool, asyncio), and Python warnings too — so no line on stderr is anything but JSON. A message that
repeats while the database is down (psycopg's pool trying to reconnect, twice a second per connection) is written
once per `REPEAT_EVERY_S`, with the count of the repeats it stood for.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
REPEAT_EVERY_S = 10.0


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class Repeats(logging.Filter):
    """Pass a message (by logger and format string) at most once per `every` seconds; the next one that passes
    carries `repeated`: how many were held back since."""

    def __init__(self, every: float = REPEAT_EVERY_S) -> None:
        super().__init__()
        self.every = every
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        last, held = self._seen.get(key, (float("-inf"), 0))
        if now - last < self.every:
            self._seen[key] = (last, held + 1)
            return False
        if held:
            record.repeated = held
        self._seen[key] = (now, 0)
        return True


def stderr_handler() -> logging.Handler:
    """The one handler: stderr, JSON. Making it also routes Python warnings into logging, in every process that
    applies the configuration (uvicorn's worker processes apply it themselves).

    A line holds a record's `extra` and message only, never where it was logged from, nor its thread, process or
    task: so logging is told not to gather them for every record (the logging HOWTO's "Optimization" settings),
    which the access-log line of every request would otherwise pay for (docs/benchmarks.md)."""
    logging.captureWarnings(True)
    logging._srcfile = None  # no stack walk to find the caller (funcName, lineno, pathname)
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    if hasattr(logging, "logAsyncioTasks"):  # Python 3.12+: the current task's name
        logging.logAsyncioTasks = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    return handler


def configure(level: str = "INFO") -> dict[str, Any]:
    """A logging config for uvicorn, Mandate and every other logger: JSON to stderr; uvicorn's own access log off;
    Python warnings logged too."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"repeats": {"()": Repeats}},
        "handlers": {"stderr": {"()": stderr_handler}},
        "loggers": {
            "mandate": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "psycopg": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
            "psycopg.pool": {"handlers": ["stderr"], "level": "WARNING", "propagate": False, "filters": ["repeats"]},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }
