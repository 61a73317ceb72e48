"""The group-commit writer alone, without HTTP: a batch of plain decision stages written as one multi-row statement
(`db.writes.insert_decisions`, as shipped) against one statement per stage, pipelined (as before) — the CPU each
costs the client (the server's writer) and PostgreSQL per decision, and the time per batch, in one run; and the
multi-row statement again into a second database without migration 015's agent index (what that index costs a write).

    python -m bench.writes                # batches of 8 and 32, 6 interleaved rounds × 150 batches per way
    python -m bench.writes --quick        # tiny (a smoke run)

On the benchmark's own PostgreSQL (bench/postgres.py), one database at the head schema with the demo governance and
2,000 stored decisions (bench/ingest.py `prepare_database`, seeded and ANALYZEd). The decisions are the demo
scenarios whose stage is plain (`INSERT_DECISION`: no approval concerns them), prepared by `service.prepare` as the
decision route does, then given fresh ids — all before the clock starts, so only the write is measured. Each way
has its own connection (configured as the server's pool configures them), warmed with 20 batches first (psycopg
prepares a statement it has run 5 times). The client's CPU is this process's (`time.process_time`), PostgreSQL's
that of the connection's backend process (`/proc`); rounds alternate the two ways so drift hits both. After the
run SQL counts every decision written, each with its verdict and both timeline entries.

Results: `bench/results/writes.json`; prose in bench/findings.md (ingestion, round 2). Not part of `bench all`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bench import postgres
from bench.ingest import SEEDED, demo_bodies, prepare_database, verify
from bench.machine import facts, record, standalone_parser
from bench.served import cpu_seconds

RESULTS = Path(__file__).resolve().parent / "results" / "writes.json"
WAYS = ("multi-row statement", "one statement each", "multi-row, without the agent index")
# The third way writes as the first, into a second database without migration 015's index (its write cost).
WITHOUT_INDEX = "idx_decision_events_agent"


async def _plain(conn: psycopg.AsyncConnection[Any]) -> list[Any]:
    """The demo scenarios' plain stages, prepared as the decision route prepares them."""
    from mandate import service
    from mandate.db import writes
    from mandate.db.governance import load_governance
    from mandate.web.api import DecisionBody, to_request

    governance = await load_governance(conn)
    plain = []
    for body in demo_bodies():
        req = to_request(DecisionBody.model_validate({**body, "decision_id": str(uuid.uuid4())}), datetime.now(UTC))
        if service.concerns_approvals(req):
            continue
        prepared = service.prepare(governance, req)
        if prepared.statement is writes.INSERT_DECISION:
            plain.append(prepared)
    return plain


def _fresh(plain: list[Any], count: int, tag: str, start: int) -> list[Any]:
    """`count` of `plain` in rotation, each with a new decision_id (tagged, for `verify`) and verdict_id."""
    out = []
    for n in range(start, start + count):
        p = plain[n % len(plain)]
        decision_id = uuid.UUID(f"{tag}-0000-4000-8000-{n:012x}")
        req = dataclasses.replace(p.req, decision_id=decision_id)
        params = {**p.params, "decision_id": decision_id, "verdict_id": uuid.uuid4()}
        out.append(dataclasses.replace(p, req=req, params=params))
    return out


def _one_each(prepared: list[Any]) -> list[list[int]]:
    return [[i] for i in range(len(prepared))]


async def _measure(
    urls: dict[str, str], size: int, batches: int, rounds: int, warm: int
) -> tuple[dict[str, list[dict[str, float]]], list[tuple[str, str, int]]]:
    import mandate.group_commit as gc
    from mandate.db.connect import use_fast_json

    grouping: dict[str, Callable[[list[Any]], list[list[int]]]] = {
        "multi-row statement": gc._statements,
        "one statement each": _one_each,
        "multi-row, without the agent index": gc._statements,
    }
    conns = {}
    for way in WAYS:
        conn = await psycopg.AsyncConnection.connect(urls[way], autocommit=True, row_factory=dict_row)
        use_fast_json(conn)
        conns[way] = conn
    runs: dict[str, list[dict[str, float]]] = {way: [] for way in WAYS}
    tags: list[tuple[str, str, int]] = []
    shipped = gc._statements
    try:
        plain = await _plain(conns[WAYS[0]])
        n = 0
        for round_ in range(rounds + 1):  # round 0 warms each connection, not measured
            for way in WAYS if round_ % 2 else tuple(reversed(WAYS)):  # alternating, so drift hits every way
                tag = f"{uuid.uuid4().hex[:8]}"
                count = warm if round_ == 0 else batches
                work = [_fresh(plain, size, tag, n + b * size) for b in range(count)]
                n += count * size
                conn = conns[way]
                backend = conn.info.backend_pid
                gc._statements = grouping[way]  # type: ignore[assignment]
                pg0, cpu0, t0 = cpu_seconds(backend), time.process_time(), time.perf_counter()
                for batch in work:
                    await gc._insert(conn, batch)
                t1, cpu1, pg1 = time.perf_counter(), time.process_time(), cpu_seconds(backend)
                gc._statements = shipped
                tags.append((urls[way], tag, count * size))
                if round_ == 0:
                    continue
                decisions = count * size
                runs[way].append(
                    {
                        "client_cpu_us": (cpu1 - cpu0) / decisions * 1e6,
                        "postgres_cpu_us": ((pg1 or 0) - (pg0 or 0)) / decisions * 1e6,
                        "batch_ms": (t1 - t0) / count * 1e3,
                    }
                )
    finally:
        gc._statements = shipped
        for conn in conns.values():
            await conn.close()
    return runs, tags


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _ratios(a: dict[str, float], b: dict[str, float], keys: tuple[str, ...]) -> dict[str, float | None]:
    """a ÷ b per key; None where b measured nothing (process CPU times count in clock ticks of 10 ms: a tiny run's
    backend may show none)."""
    return {key: round(a[key] / b[key], 3) if b[key] else None for key in keys}


def run(server: postgres.Server, sizes: tuple[int, ...], batches: int, rounds: int, warm: int) -> dict[str, Any]:
    database, url = prepare_database(server, seeded=SEEDED)
    bare, bare_url = prepare_database(server, seeded=SEEDED)
    with psycopg.connect(bare_url, autocommit=True) as conn:
        conn.execute(f"DROP INDEX mandate.{WITHOUT_INDEX}")
    urls = {way: bare_url if "without" in way else url for way in WAYS}
    out: dict[str, Any] = {"batches_per_round": batches, "rounds": rounds, "seeded": SEEDED, "sizes": []}
    try:
        for size in sizes:
            runs, tags = asyncio.run(_measure(urls, size, batches, rounds, warm))
            checks = [verify(u, tag, count, 0) for u, tag, count in tags]
            stored, expected = sum(c["stored"] for c in checks), sum(count for _, _, count in tags)
            ok = all(c["ok"] for c in checks) and stored == expected
            row: dict[str, Any] = {"batch_size": size, "stored": stored, "ok": ok, "ways": {}}
            for way, measured in runs.items():
                row["ways"][way] = {key: round(_median([m[key] for m in measured]), 2) for key in measured[0]} | {
                    "rounds": measured
                }
            multi, each = row["ways"]["multi-row statement"], row["ways"]["one statement each"]
            row["multi_over_each"] = _ratios(multi, each, ("client_cpu_us", "postgres_cpu_us", "batch_ms"))
            bare_way = row["ways"]["multi-row, without the agent index"]
            row["with_over_without_agent_index"] = _ratios(multi, bare_way, ("postgres_cpu_us", "batch_ms"))
            print(
                f"  batches of {size}: "
                + "; ".join(
                    f"{way}: client {w['client_cpu_us']:.0f} µs, PostgreSQL {w['postgres_cpu_us']:.0f} µs per decision,"
                    f" {w['batch_ms']:.2f} ms per batch"
                    for way, w in row["ways"].items()
                )
                + f" (stored {stored} of {expected})",
                flush=True,
            )
            out["sizes"].append(row)
    finally:
        server.drop(database)
        server.drop(bare)
    return out


def main() -> int:
    parser = standalone_parser(__doc__, RESULTS)
    args = parser.parse_args()
    started = time.perf_counter()
    sizes, batches, rounds, warm = ((8,), 5, 1, 5) if args.quick else ((8, 32), 150, 6, 20)
    with postgres.server() as server:
        results = {"machine": facts(), "command": "python -m bench.writes", **run(server, sizes, batches, rounds, warm)}
    record(results, args.out or (None if args.quick else RESULTS), started)
    return 0 if all(row["ok"] for row in results["sizes"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
