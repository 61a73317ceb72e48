"""The rehearsal of the chain: before the backup and before anything changes, every migration from 008 to the target
is applied to this data, with the remedies, in a transaction that is rolled back. A migration that cannot apply stops
the run with the database unchanged, naming it with PostgreSQL's error and DETAIL."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from mandate.errors import CheckFailed, MigrationFailed
from mandate.migrate import runner
from mandate.migrate.files import load
from mandate.migrate.progress import Progress
from mandate.migrate.runbook_options import VERSION, Options

#: Rehearse the whole chain (008 → target, rolled back) before the backup when the estimated migration takes at most
#: this long; beyond it, the gate's checks (which cover what 009 and 010 require of history) and the migration
#: transaction itself (all or nothing) stand in for it, unless --rehearse asks for it anyway.
REHEARSAL_LIMIT_S = 120.0


def rehearse_chain(
    conn: psycopg.Connection[Any],
    opts: Options,
    progress: Progress,
    data: dict[str, Any],
    *,
    estimated_s: float,
    lock_wait_s: float,
) -> str | None:
    """Rehearse 008 → target unless the run says not to (a dry run, --no-rehearse, an estimate above the limit);
    record it in `data["chain_rehearsal"]`. A summary when it ran to the end; CheckFailed when a migration fails."""
    targets = [f.label for f in load() if f.version >= VERSION and (opts.to is None or f.version <= opts.to)]
    chain = f"{targets[0]}→{targets[-1]}" if targets else "008"
    wanted = opts.rehearse
    if opts.dry_run or wanted is False or (wanted is None and estimated_s > REHEARSAL_LIMIT_S):
        reason = (
            "the dry run is itself the rehearsal"
            if opts.dry_run
            else "--no-rehearse"
            if wanted is False
            else f"the migration is estimated at {estimated_s:.0f} s (> {REHEARSAL_LIMIT_S:.0f} s); the gate's checks "
            "and the all-or-nothing migration transaction stand in for it (--rehearse forces it)"
        )
        data["chain_rehearsal"] = {"chain": chain, "ran": False, "reason": reason}
        progress.log(f"   rehearsal of {chain} not run: {reason}")
        return None
    progress.log(f"   rehearsing {chain} in a transaction that is rolled back (nothing is kept)")
    started = time.perf_counter()
    record: dict[str, Any] = {"chain": chain, "ran": True}
    data["chain_rehearsal"] = record
    try:
        with conn.transaction(force_rollback=True):
            opts.remedies.fill(conn)
            runner.Runner(
                conn,
                lock_wait_s=lock_wait_s,
                lock_timeout=opts.lock_timeout,
                statement_timeout=opts.statement_timeout,
            ).up(to=opts.to)
    except MigrationFailed as exc:
        if exc.sqlstate == "55P03":  # lock_not_available: other sessions (--allow-connections) hold the tables
            reason = (
                f"not completed: other sessions held the tables beyond lock_timeout {opts.lock_timeout}; the "
                "migration transaction retries the locks and is all or nothing"
            )
            record.update(passed=None, reason=reason, duration_s=round(time.perf_counter() - started, 3))
            data["warnings"].append(f"rehearsal of {chain}: {reason}")
            progress.log(f"   rehearsal of {chain} {reason}", style="yellow")
            return None
        record.update(
            passed=False,
            duration_s=round(time.perf_counter() - started, 3),
            failed_migration=exc.label,
            sqlstate=exc.sqlstate,
            detail=exc.detail,
            hint=exc.hint,
            error=str(exc),
        )
        raise CheckFailed(
            f"the rehearsal of {chain} (rolled back) shows that {exc.label} cannot apply to this database, so "
            f"nothing was changed and no backup was taken:\n  {exc}"
        ) from exc
    record.update(passed=True, duration_s=round(time.perf_counter() - started, 3))
    progress.log(f"   rehearsal of {chain}: every migration applied, rolled back in {record['duration_s']:.2f} s")
    return f"{chain} rehearsed and rolled back"
