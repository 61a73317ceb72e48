"""The checklist's constraint tests (T+60), run against the migrated schema inside a transaction that is rolled back.

1. a domain slug that is not a slug ('Bad-Domain')          → refused: "violates check constraint" (SQLSTATE 23514);
2. a scope whose id does not start with its domain's prefix → refused: "GOVERNANCE VIOLATION";
3. a scope id with the right prefix                         → accepted.

The checklist's literal statements use 'org-id' for a UUID column, so they would fail for the wrong reason (invalid
input syntax for type uuid). These use a real organization of the database (or a throwaway one when there is none)
and its domain 'finance' (created, and rolled back, when the organization has none), and assert the *specific*
error. Every statement runs in its own savepoint; afterwards the test rows are looked for again: none may survive.
The statements are in `db/migration_checks.py`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from mandate.db import migration_checks as q

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


def run(conn: psycopg.Connection[Any]) -> ConstraintRun:
    """Run the three tests in the caller's transaction, inside a savepoint that is rolled back."""
    marker = uuid.uuid4().hex[:8]
    throwaway: list[str] = []
    tests: list[ConstraintTest] = []
    test_organization = f"m008-constraint-test-{marker}"
    with conn.transaction(force_rollback=True):
        org = q.first_organization(conn)
        if org is None:
            org = q.create_organization(conn, test_organization)
            throwaway.append(f"organization {org}")
        created_domain = not q.has_domain(conn, org, _DOMAIN)
        if created_domain:
            q.create_domain(conn, org, _DOMAIN)
            throwaway.append(f"domain {_DOMAIN} of organization {org}")
        valid_id = "finance.prod.system"
        if q.has_scope(conn, valid_id):
            valid_id = f"finance.prod.system-m008-{marker}"

        state, message = q.attempt(conn, q.BAD_SLUG_INSERT, (org,))
        tests.append(
            ConstraintTest(
                "slug",
                "domain slug format constraint",
                q.BAD_SLUG_INSERT.replace("%s", f"'{org}'"),
                'refused: "violates check constraint" (SQLSTATE 23514)',
                state == "23514" and "violates check constraint" in message,
                _outcome(state, message),
            )
        )
        state, message = q.attempt(conn, q.SCOPE_INSERT, (q.BAD_SCOPE_ID, _DOMAIN, org))
        tests.append(
            ConstraintTest(
                "prefix",
                "scope_id prefix validation",
                _show(q.SCOPE_INSERT, (q.BAD_SCOPE_ID, _DOMAIN, str(org))),
                'refused: "GOVERNANCE VIOLATION"',
                state is not None and "GOVERNANCE VIOLATION" in message,
                _outcome(state, message),
            )
        )
        state, message = q.attempt(conn, q.SCOPE_INSERT, (valid_id, _DOMAIN, org))
        tests.append(
            ConstraintTest(
                "valid",
                "valid scope_id insertion",
                _show(q.SCOPE_INSERT, (valid_id, _DOMAIN, str(org))),
                "accepted",
                state is None,
                _outcome(state, message),
            )
        )
    leftovers = q.leftovers(
        conn,
        valid_scope_id=valid_id,
        organization_name=test_organization,
        created_domain=created_domain,
        organization_id=org,
        domain=_DOMAIN,
    )
    return ConstraintRun(tests, str(org), throwaway, leftovers)


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
