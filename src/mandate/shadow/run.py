"""Shadow evaluation of a candidate bundle over stored history: read, judge in workers, tally, report.

1. The candidate is applied exactly as `mandate apply` would apply it — every check, the database's own
   constraints included (deferred ones fired at once) — inside a transaction that is **always rolled back**, and
   the governance it would produce is read back in that transaction. Nothing is written; a bundle that fails
   validation raises `BundleError` before any decision is read.
2. In one repeatable-read, read-only transaction, the governance in force (the baseline) is read, and the stored
   decisions of the window are streamed in key order with a server-side cursor.
3. Batches are judged by the pure evaluator (`tally.judge_batch`) — in worker processes when there are several
   cores and enough history, each building both governances once from their rows — and merged in key order, so
   examples are the first ones in key order whatever the number of workers. Memory stays flat.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg

from mandate.db import history
from mandate.governance import cache
from mandate.governance.apply import apply_bundle
from mandate.governance.bundle import Bundle
from mandate.shadow.tally import Tally, judge_batch

BATCH = 2000
IN_PROCESS_BELOW = 20_000  # decisions: under this, starting worker processes costs more than it saves


@dataclass
class ShadowResult:
    """The tally, and how the time was spent."""

    tally: Tally
    window: history.Window
    seconds: float
    read_seconds: float  # waiting for the database (reading and decoding rows)
    evaluate_seconds: float  # judging (in this process, or waiting for the workers)
    workers: int

    @property
    def per_second(self) -> float:
        return self.tally.evaluated / self.seconds if self.seconds else 0.0


def candidate_rows(conn: psycopg.Connection[Any], bundle: Bundle) -> cache.GovernanceRows:
    """The governance rows `bundle` would produce, checked exactly as `mandate apply` checks it; nothing written."""
    with conn.transaction(force_rollback=True):
        apply_bundle(conn, bundle)
        conn.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred checks a commit would run
        return cache.read_rows(conn)


def count(conn: psycopg.Connection[Any], window: history.Window) -> int:
    """How many decision stages the window holds (for progress)."""
    statement, params = history.query(window)
    from psycopg import sql

    row = conn.execute(sql.SQL("SELECT count(*) FROM ({}) AS h").format(statement), params).fetchone()
    return int(row[0]) if row else 0


def shadow(
    url: str,
    bundle: Bundle,
    window: history.Window,
    *,
    examples: int = 5,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ShadowResult:
    """Evaluate `bundle` against the stored decisions of `window`; see the module docstring."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True, application_name="mandate shadow") as conn:
        candidate = candidate_rows(conn, bundle)
    with psycopg.connect(url, application_name="mandate shadow") as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        baseline = cache.read_rows(conn)
        total = count(conn, window)
        n = _workers(workers, total)
        tally = Tally(examples)
        read = evaluate = 0.0
        batches = _timed(history.stream(conn, window, batch=BATCH))
        if n <= 1:
            base, cand = cache.build(*baseline), cache.build(*candidate)
            for rows, waited in batches:
                read += waited
                t = time.perf_counter()
                tally.merge(judge_batch(base, cand, rows, examples))
                evaluate += time.perf_counter() - t
                if progress:
                    progress(len(rows))
        else:
            context = multiprocessing.get_context("spawn" if os.name != "posix" else "forkserver")
            with context.Pool(n, initializer=_init, initargs=(baseline, candidate, examples)) as pool:
                sizes: list[int] = []

                def feed() -> Iterator[list[history.HistoryRow]]:
                    nonlocal read
                    for rows, waited in batches:
                        read += waited
                        sizes.append(len(rows))
                        yield rows

                t = time.perf_counter()
                for i, part in enumerate(pool.imap(_judge, feed(), chunksize=1)):
                    tally.merge(part)
                    if progress:
                        progress(sizes[i])
                evaluate = time.perf_counter() - t - read
        conn.rollback()
    return ShadowResult(tally, window, time.perf_counter() - started, read, max(evaluate, 0.0), n)


def _workers(asked: int | None, total: int) -> int:
    if asked is not None:
        return max(1, asked)
    if total < IN_PROCESS_BELOW:
        return 1
    return max(1, min(os.cpu_count() or 1, total // BATCH))


def _timed(batches: Iterator[list[history.HistoryRow]]) -> Iterator[tuple[list[history.HistoryRow], float]]:
    while True:
        t = time.perf_counter()
        rows = next(batches, None)
        if rows is None:
            return
        yield rows, time.perf_counter() - t


# Worker processes: both governances built once per process from their (picklable) rows.
_state: dict[str, Any] = {}


def _init(baseline: cache.GovernanceRows, candidate: cache.GovernanceRows, examples: int) -> None:
    _state.update(baseline=cache.build(*baseline), candidate=cache.build(*candidate), examples=examples)


def _judge(rows: list[history.HistoryRow]) -> Tally:
    return judge_batch(_state["baseline"], _state["candidate"], rows, _state["examples"])
