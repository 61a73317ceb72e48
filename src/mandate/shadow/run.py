"""Shadow evaluation of a candidate bundle over stored history: read, judge in workers, tally, report.

1. The candidate is applied exactly as `mandate apply` would apply it — every check, the database's own
   constraints included (deferred ones fired at once) — inside a transaction that is **always rolled back**, and
   the governance it would produce is read back in that transaction. Nothing is written; a bundle that fails
   validation raises `BundleError` before any decision is read.
2. In one repeatable-read, read-only transaction, the governance in force (the baseline) is read, and the stored
   decisions of the window are streamed in key order (decision_id, stage) with a server-side cursor.
3. Batches are judged by the pure evaluator (`tally.judge_batch`). With several cores and enough history, the key
   space is cut into consecutive ranges that worker processes read and judge in parallel — each with its own
   connection in the snapshot the main transaction exports (`pg_export_snapshot`), so all of them see one
   consistent history, and each building both governances once from their rows. Tallies merge in key order, so
   the examples are the first ones in key order whatever the number of workers. Memory stays flat.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg.types.json import set_json_loads

from mandate.apply import apply_bundle
from mandate.db import governance as governance_queries
from mandate.db import history
from mandate.governance import cache
from mandate.governance.bundle import Bundle
from mandate.shadow.tally import Tally, judge_batch

BATCH = 2000
IN_PROCESS_BELOW = 100_000  # decisions: below this, starting worker processes (about 1.5 s) costs more than it saves


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
        governance_queries.check_deferred(conn)  # the deferred checks a commit would run
        return governance_queries.governance_rows(conn)


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
        _fast_json(conn)
        history.read_consistently(conn)
        baseline = governance_queries.governance_rows(conn)
        n = _workers(workers, conn, window)
        tally = Tally(examples)
        read = evaluate = 0.0
        if n <= 1:
            part, read, evaluate = _judge_range(
                conn, window, (None, None), cache.build(*baseline), cache.build(*candidate), examples, progress
            )
            tally.merge(part)
        else:
            # Workers read their own key ranges in this transaction's snapshot: one consistent history.
            snapshot = history.export_snapshot(conn)
            context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
            init = (url, snapshot, window, baseline, candidate, examples)
            with context.Pool(n, initializer=_init, initargs=init) as pool:
                for part, rows, waited, judged in pool.imap(_judge_chunk, _chunks(n * CHUNKS_PER_WORKER)):
                    tally.merge(part)
                    read += waited
                    evaluate += judged
                    if progress:
                        progress(rows)
        conn.rollback()
    return ShadowResult(tally, window, time.perf_counter() - started, read, evaluate, n)


CHUNKS_PER_WORKER = 8  # key ranges per worker: small enough to balance, large enough to stream


def _chunks(n: int) -> list[history.KeyRange]:
    """`n` consecutive [low, high) ranges covering every decision_id, in key order."""
    bounds = [uuid.UUID(int=(i << 128) // n) for i in range(1, n)]
    lows: list[uuid.UUID | None] = [None, *bounds]
    highs: list[uuid.UUID | None] = [*bounds, None]
    return list(zip(lows, highs, strict=True))


def _judge_range(
    conn: psycopg.Connection[Any],
    window: history.Window,
    keys: history.KeyRange,
    baseline: cache.Governance,
    candidate: cache.Governance,
    examples: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[Tally, float, float]:
    """The tally of one key range, with the seconds spent waiting for rows and judging them."""
    tally = Tally(examples)
    read = judged = 0.0
    batches = history.stream(conn, window, keys, batch=BATCH)
    while True:
        t = time.perf_counter()
        rows = next(batches, None)
        read += time.perf_counter() - t
        if rows is None:
            return tally, read, judged
        t = time.perf_counter()
        tally.merge(judge_batch(baseline, candidate, rows, examples))
        judged += time.perf_counter() - t
        if progress:
            progress(len(rows))


def _workers(asked: int | None, conn: psycopg.Connection[Any], window: history.Window) -> int:
    if asked is not None:
        return max(1, asked)
    cores = os.cpu_count() or 1
    if cores == 1 or history.count(conn, window, limit=IN_PROCESS_BELOW) < IN_PROCESS_BELOW:
        return 1
    return cores


def _fast_json(conn: psycopg.Connection[Any]) -> None:
    set_json_loads(orjson.loads, conn)


# Worker processes: a connection in the exported snapshot, and both governances built once from their rows.
_state: dict[str, Any] = {}


def _init(
    url: str,
    snapshot: str,
    window: history.Window,
    baseline: cache.GovernanceRows,
    candidate: cache.GovernanceRows,
    examples: int,
) -> None:
    conn = psycopg.connect(url, application_name="mandate shadow (worker)")
    _fast_json(conn)
    _state.update(
        conn=conn,
        snapshot=snapshot,
        window=window,
        baseline=cache.build(*baseline),
        candidate=cache.build(*candidate),
        examples=examples,
    )


def _judge_chunk(keys: history.KeyRange) -> tuple[Tally, int, float, float]:
    conn: psycopg.Connection[Any] = _state["conn"]
    history.read_consistently(conn, _state["snapshot"])
    try:
        tally, read, judged = _judge_range(
            conn, _state["window"], keys, _state["baseline"], _state["candidate"], _state["examples"]
        )
    finally:
        conn.rollback()
    return tally, tally.evaluated, read, judged
