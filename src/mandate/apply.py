"""Applying a governance bundle: check it against what the database holds, then write what is new, in one
transaction.

    apply_bundle(conn, bundle) -> ApplyResult
      1. lock     one apply at a time (db/governance.py `lock_applies`)
      2. read     the stored governance the bundle touches (`plan.wanted` → `db.governance.stored_rows`)
      3. plan     check every rule, list every problem (`BundleError`), compute the rows: `governance/plan.py`, pure
      4. write    insert the rows (`db.governance.insert_governance`)

Nothing is written unless every rule holds; the rules are the planner's (its docstring lists them).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import psycopg

from mandate.db import governance as governance_queries
from mandate.errors import GovernanceError
from mandate.governance.bundle import Bundle
from mandate.governance.plan import ApplyResult, plan, stored_from_rows, wanted


def apply_bundle(conn: psycopg.Connection[Any], bundle: Bundle, *, dry_run: bool = False) -> ApplyResult:
    """Check `bundle` against the database and write what is new, in one transaction (a savepoint when the caller
    holds one). Raises `BundleError` listing every problem, having written nothing. With `dry_run`, everything
    runs and is rolled back: the result says what would be written."""
    try:
        with conn.transaction(force_rollback=dry_run):
            governance_queries.lock_applies(conn)
            rows = governance_queries.stored_rows(conn, **asdict(wanted(bundle)))
            planned = plan(bundle, stored_from_rows(*rows))
            governance_queries.insert_governance(conn, **planned.rows())
    except psycopg.errors.IntegrityError as exc:  # a rule the checks above missed; the database has the last word
        detail = exc.diag.message_primary or str(exc)
        raise GovernanceError(f"the database refused the bundle (nothing was written): {detail}") from exc
    return ApplyResult(tuple(planned.changes), dry_run=dry_run, warnings=tuple(planned.warnings))
