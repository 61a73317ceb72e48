"""Batch ingestion against single decisions, in one run: decisions per second through `POST /api/decisions/batch`
and through `POST /api/decisions`, from the same number of concurrent connections (issue 20: ≥ 5 ×).

    python -m bench.batch                 # 3 rounds × 15 s per kind, 8 connections, batches of 500
    python -m bench.batch --quick         # tiny (a smoke run)

`mandate serve --workers <cores>` (bench/served.py, authentication off as the ingestion benchmark runs it) on a
dedicated PostgreSQL with the demo governance. The decisions are the demo scenarios (bench/ingest.py's bodies), each
sent with a fresh decision_id. The load generator is asyncio + httpx in this process, one keep-alive connection per
worker coroutine; rounds alternate (single, batch, then batch, single, …) so drift on a shared machine hits both.
Every answer must be 201 (each item of a batch too), and afterwards SQL must count exactly the decisions answered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import postgres
from bench.ingest import PLACEHOLDER, CpuMeter, demo_bodies, prepare_database
from bench.served import serve

TARGET_RATIO = 5.0


def _decision(bodies: list[dict[str, Any]], n: int) -> dict[str, Any]:
    body = dict(bodies[n % len(bodies)])
    assert body["decision_id"] == PLACEHOLDER
    body["decision_id"] = str(uuid.uuid4())
    return body


async def _load(base_url: str, kind: str, connections: int, seconds: float, batch: int) -> dict[str, Any]:
    """`connections` coroutines send for `seconds`; decisions answered 201, requests, and any other status."""
    bodies = demo_bodies()
    deadline = time.perf_counter() + seconds
    stored = requests = 0
    bad: dict[int, int] = {}
    counter = 0

    async def worker() -> None:
        nonlocal stored, requests, counter
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            while time.perf_counter() < deadline:
                if kind == "single":
                    counter += 1
                    r = await client.post("/api/decisions", json=_decision(bodies, counter))
                    requests += 1
                    if r.status_code == 201:
                        stored += 1
                    else:
                        bad[r.status_code] = bad.get(r.status_code, 0) + 1
                else:
                    items = []
                    for _ in range(batch):
                        counter += 1
                        items.append(_decision(bodies, counter))
                    r = await client.post("/api/decisions/batch", json={"decisions": items})
                    requests += 1
                    if r.status_code != 200:
                        bad[r.status_code] = bad.get(r.status_code, 0) + 1
                        continue
                    for item in r.json()["results"]:
                        if item["status"] == 201:
                            stored += 1
                        else:
                            bad[item["status"]] = bad.get(item["status"], 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    return {"stored": stored, "requests": requests, "seconds": round(elapsed, 2), "per_s": stored / elapsed, "bad": bad}


def measure(
    base_url: str,
    url: str,
    *,
    rounds: int,
    seconds: float,
    connections: int,
    batch: int,
    pids: tuple[int | None, int | None] = (None, None),
) -> dict[str, Any]:
    """Both kinds alternately; with `pids` (the server's, the postmaster's), each run's CPU per decision of the
    server and of PostgreSQL too: on a noisy shared machine a steadier measure than the rates."""
    runs: dict[str, list[dict[str, Any]]] = {"single": [], "batch": []}
    for r in range(rounds):
        for kind in ("single", "batch") if r % 2 == 0 else ("batch", "single"):
            meter = CpuMeter(*pids)
            meter.start()
            result = asyncio.run(_load(base_url, kind, connections, seconds, batch))
            cpu = meter.per_decision_ms(result["stored"])
            result["cpu_ms_per_decision"] = {k: cpu.get(k) for k in ("server", "postgres")}
            runs[kind].append(result)
            print(
                f"  round {r + 1} {kind:<6} {result['per_s']:8.0f} decisions/s  CPU ms per decision "
                f"{result['cpu_ms_per_decision']}  bad {result['bad']}",
                flush=True,
            )
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM mandate.decision_events").fetchone()
    counted = int(row[0]) if row else 0
    answered = sum(x["stored"] for kind in runs.values() for x in kind)
    single = sum(x["stored"] for x in runs["single"]) / sum(x["seconds"] for x in runs["single"])
    batched = sum(x["stored"] for x in runs["batch"]) / sum(x["seconds"] for x in runs["batch"])
    ratio = batched / single if single else 0.0
    ok = counted == answered and not any(x["bad"] for kind in runs.values() for x in kind)
    medians = {kind: _median_cpu(runs[kind]) for kind in runs}
    results = {
        "connections": connections,
        "batch_size": batch,
        "seconds_per_round": seconds,
        "rounds": runs,
        "single_per_s": round(single, 1),
        "batch_per_s": round(batched, 1),
        "ratio": round(ratio, 2),
        "cpu_ms_per_decision": medians,
        "cpu_ratio": _cpu_ratio(medians),
        "target": TARGET_RATIO,
        "met": ratio >= TARGET_RATIO,
        "stored_counted_in_sql": counted,
        "answered_201": answered,
        "ok": ok,
    }
    print(
        f"single {single:.0f}/s, batch {batched:.0f}/s: {ratio:.2f} × (target ≥ {TARGET_RATIO:g} ×); "
        f"201 answered {answered}, counted in SQL {counted}; CPU ms per decision (medians) {medians}, "
        f"single ÷ batch {results['cpu_ratio']} ×",
        flush=True,
    )
    return results


def _median_cpu(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    """The median of each side's CPU per decision over the runs of one kind (None where it was not measured)."""
    out: dict[str, float | None] = {}
    for side in ("server", "postgres"):
        known = [x["cpu_ms_per_decision"][side] for x in runs if x["cpu_ms_per_decision"].get(side) is not None]
        out[side] = round(statistics.median(known), 3) if known else None
    return out


def _cpu_ratio(cpu: dict[str, dict[str, float | None]]) -> float | None:
    """How many batch decisions the CPU of one single-route decision pays for (server and PostgreSQL together)."""
    totals = []
    for kind in ("single", "batch"):
        server, postgres_ = cpu[kind]["server"], cpu[kind]["postgres"]
        if server is None or postgres_ is None:
            return None
        totals.append(server + postgres_)
    return round(totals[0] / totals[1], 2) if totals[1] else None


def run(**options: Any) -> dict[str, Any]:
    with postgres.server() as server, tempfile.TemporaryDirectory(prefix="mandate-bench-batch-") as tmp:
        database, url = prepare_database(server)
        try:
            with serve(url, Path(tmp)) as served:
                return measure(served.base_url, url, pids=(served.pid, server.postmaster_pid()), **options)
        finally:
            server.drop(database)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3, help="rounds (each: both kinds, alternating order)")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per kind and round")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections, both kinds")
    parser.add_argument("--batch", type=int, default=500, help="decisions per batch request")
    parser.add_argument("--quick", action="store_true", help="tiny: 1 round of 2 s, batches of 50")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds, args.batch = 1, 2.0, 50
    results = run(rounds=args.rounds, seconds=args.seconds, connections=args.connections, batch=args.batch)
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
