"""The checklist's constraint tests (T+60), run against the migrated schema inside a transaction that is rolled back.

1. a domain slug that is not a slug ('Bad-Domain')          → refused: "violates check constraint" (SQLSTATE 23514);
2. a scope whose id does not start with its domain's prefix → refused: "GOVERNANCE VIOLATION";
3. a scope id with the right prefix                         → accepted.

The checklist's literal statements use 'org-id' for a UUID column, so they would fail for the wrong reason (invalid
input syntax for type uuid). These use a real organization of the database (or a throwaway one when there is none)
and its domain 'finance' (created, and rolled back, when the organization has none), and assert the *specific*
error. Every statement runs in its own savepoint; afterwards the test rows are looked for again: none may survive.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

_DOMAIN = "finance"


@dataclass(frozen=True)
class ConstraintTest:
    key: str  # slug | prefix | valid
    title: str
    statement: str
    expected: str
    passed: bool
    outcome: str  # what happened: the error (SQLSTATE and message), or "accepted"

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "statement": self.statement,
            "expected": self.expected,
            "passed": self.passed,
            "outcome": self.outcome,
        }


@dataclass
class ConstraintRun:
    tests: list[ConstraintTest]
    organization: str
    throwaway: list[str]  # what had to be created for the tests (rolled back with them)
    leftovers: int  # test rows found after the rollback (must be 0)

    @property
    def passed(self) -> bool:
        return len(self.tests) == 3 and all(t.passed for t in self.tests) and self.leftovers == 0

    def get(self, key: str) -> ConstraintTest | None:
        return next((t for t in self.tests if t.key == key), None)

    def as_json(self) -> dict[str, Any]:
        return {
            "tests": [t.as_json() for t in self.tests],
            "organization": self.organization,
            "throwaway": self.throwaway,
            "leftovers": self.leftovers,
            "passed": self.passed,
        }


def _attempt(conn: psycopg.Connection[Any], statement: str, params: tuple[Any, ...]) -> tuple[str | None, str]:
    """Run `statement` in a savepoint that is always rolled back; (SQLSTATE or None, message or 'accepted')."""
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(statement, params)
    except psycopg.Error as exc:
        return exc.sqlstate, (exc.diag.message_primary or str(exc)).strip()
    return None, "accepted"


def run(conn: psycopg.Connection[Any]) -> ConstraintRun:
    """Run the three tests in the caller's transaction, inside a savepoint that is rolled back."""
    marker = uuid.uuid4().hex[:8]
    throwaway: list[str] = []
    tests: list[ConstraintTest] = []
    with conn.transaction(force_rollback=True):
        row = conn.execute(
            "SELECT organization_id FROM mandate.organizations ORDER BY created_at, name LIMIT 1"
        ).fetchone()
        if row is None:
            row = conn.execute(
                "INSERT INTO mandate.organizations (name, description) VALUES (%s, 'migration 008 constraint test') "
                "RETURNING organization_id",
                (f"m008-constraint-test-{marker}",),
            ).fetchone()
            assert row is not None
            throwaway.append(f"organization {row[0]}")
        org: uuid.UUID = row[0]
        has_finance = conn.execute(
            "SELECT 1 FROM mandate.domains WHERE organization_id = %s AND domain = %s", (org, _DOMAIN)
        ).fetchone()
        if has_finance is None:
            conn.execute("INSERT INTO mandate.domains (organization_id, domain) VALUES (%s, %s)", (org, _DOMAIN))
            throwaway.append(f"domain {_DOMAIN} of organization {org}")
        valid_id = "finance.prod.system"
        if conn.execute("SELECT 1 FROM mandate.scopes WHERE scope_id = %s", (valid_id,)).fetchone():
            valid_id = f"finance.prod.system-m008-{marker}"

        statement = "INSERT INTO domains (organization_id, domain) VALUES (%s, 'Bad-Domain')"
        state, message = _attempt(conn, statement.replace("domains", "mandate.domains", 1), (org,))
        tests.append(
            ConstraintTest(
                "slug",
                "domain slug format constraint",
                statement.replace("%s", f"'{org}'"),
                'refused: "violates check constraint" (SQLSTATE 23514)',
                state == "23514" and "violates check constraint" in message,
                _outcome(state, message),
            )
        )
        statement = "INSERT INTO scopes (scope_id, domain, organization_id, owning_team) VALUES (%s, %s, %s, 'Team')"
        state, message = _attempt(
            conn, statement.replace("scopes", "mandate.scopes", 1), ("wrong.prod.system", _DOMAIN, org)
        )
        tests.append(
            ConstraintTest(
                "prefix",
                "scope_id prefix validation",
                _show(statement, ("wrong.prod.system", _DOMAIN, str(org))),
                'refused: "GOVERNANCE VIOLATION"',
                state is not None and "GOVERNANCE VIOLATION" in message,
                _outcome(state, message),
            )
        )
        state, message = _attempt(conn, statement.replace("scopes", "mandate.scopes", 1), (valid_id, _DOMAIN, org))
        tests.append(
            ConstraintTest(
                "valid",
                "valid scope_id insertion",
                _show(statement, (valid_id, _DOMAIN, str(org))),
                "accepted",
                state is None,
                _outcome(state, message),
            )
        )
    leftovers = conn.execute(
        "SELECT (SELECT count(*) FROM mandate.domains WHERE domain = 'Bad-Domain') "
        "     + (SELECT count(*) FROM mandate.scopes WHERE scope_id IN ('wrong.prod.system', %s)) "
        "     + (SELECT count(*) FROM mandate.organizations WHERE name = %s)"
        "     + (CASE WHEN %s THEN (SELECT count(*) FROM mandate.domains WHERE organization_id = %s AND domain = %s)"
        "        ELSE 0 END)",
        (valid_id, f"m008-constraint-test-{marker}", has_finance is None, org, _DOMAIN),
    ).fetchone()
    assert leftovers is not None
    return ConstraintRun(tests, str(org), throwaway, int(leftovers[0]))


def _outcome(state: str | None, message: str) -> str:
    return "accepted" if state is None else f"refused, SQLSTATE {state}: {message}"


def _show(statement: str, values: tuple[str, ...]) -> str:
    for value in values:
        statement = statement.replace("%s", f"'{value}'", 1)
    return statement


def run_alone(conn: psycopg.Connection[Any]) -> ConstraintRun:
    """Run the tests in a transaction of their own (rolled back)."""
    with conn.transaction(force_rollback=True):
        return run(conn)
