"""The error tree of Mandate. Only `web/` maps these to HTTP statuses; only `cli.py` maps them to exit codes.

MandateError                   every error this package raises on purpose; the message says what to do
├── ConfigError                a setting is missing or malformed (names the setting)
├── DatabaseUnavailable        the database cannot be reached or started
├── ToolNotFound               no suitable psql / pg_dump / pg_restore for the server's version
├── BackupError                a backup could not be created, verified, copied or restored (says which and why)
├── MigrationError             a migration failed; the transaction was rolled back
│   ├── MigrationFailed        a migration file's SQL failed (names the file, the error, DETAIL and HINT)
│   ├── MigrationLockTimeout   another runner holds the migration lock (names its pid and application)
│   ├── UnknownDatabaseShape   the database is neither empty, nor Mandate-managed, nor legacy Mandate
│   ├── CheckFailed            a migration check (pre-flight, gate, verification) failed: names rows and remedy
│   └── SchemaTooOld           the schema is older than this code needs (names the command to run)
├── GovernanceError            a governance bundle or request broke a rule (names file, object, field)
├── ReportedFailure            a command's finding is a failure it has already printed (a broken gate, governance
│                              problems, a replay that differs): exit 1, no further message
├── IngestError                a decision or outcome not stored: `kind` attribution | invalid_signals | conflict |
│                              not_found, with its `Problem`s (web/errors.py: 422 | 422 | 409 | 404)
├── BadCursor (db.decisions)   a pagination cursor this server did not produce (400)
└── ApiError (web.errors)      an HTTP answer a route decided: status, code, message, problems

The evaluator's errors (`evaluator.errors.EvaluatorError`) stay outside the tree on purpose: the evaluator imports
nothing of Mandate (docs/architecture.md); the governance loader turns them into reports, never into failures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class MandateError(Exception):
    """Base class for every error Mandate raises deliberately."""


class ConfigError(MandateError):
    """A configuration value is missing or malformed."""


class DatabaseUnavailable(MandateError):
    """The database cannot be reached, or the embedded server cannot be started."""


class ToolNotFound(MandateError):
    """No PostgreSQL client tool of a suitable major version was found."""


class BackupError(MandateError):
    """A backup could not be created, verified, copied or restored."""


class MigrationError(MandateError):
    """A migration could not be applied; nothing of it was kept."""


class MigrationFailed(MigrationError):
    """The SQL of one migration file failed; `label` names the file, `detail`/`hint`/`sqlstate` are PostgreSQL's."""

    def __init__(
        self, message: str, *, version: int, label: str, sqlstate: str | None, detail: str | None, hint: str | None
    ) -> None:
        super().__init__(message)
        self.version = version
        self.label = label
        self.sqlstate = sqlstate
        self.detail = detail
        self.hint = hint


class MigrationLockTimeout(MigrationError):
    """Another migration runner holds the migration lock."""


class UnknownDatabaseShape(MigrationError):
    """The database holds tables the runner cannot classify."""


class CheckFailed(MigrationError):
    """A check around a migration failed (pre-flight, pre-migration gate, verification, constraint or smoke test)."""


class SchemaTooOld(MigrationError):
    """The database schema is older than the code requires."""


class GovernanceError(MandateError):
    """Governance data (a bundle, a spec, a policy) is invalid."""


class ReportedFailure(MandateError):
    """A command ran to its end and found a failure, which it has already reported (a gate the candidate breaks,
    governance problems, a replay that differs): the command line exits 1 and says nothing more."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: the field (dotted path), a code and a sentence."""

    field: str
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class IngestError(MandateError):
    """A request that is not stored as a decision. `kind` tells the web layer how to answer."""

    def __init__(
        self, kind: str, message: str, problems: list[Problem] | None = None, body: dict[str, Any] | None = None
    ):
        super().__init__(message)
        self.kind = kind  # attribution | invalid_signals | conflict | not_found
        self.message = message
        self.problems = problems or []
        self.body = body or {}
