"""Memory: the server's RSS under the ingestion load (wrk, concurrency 32) for 10 minutes, sampled every second —
the supervisor and its worker processes together, and the largest single process.

Flat means no growth: after the warm-up, a least-squares line through the samples rises by less than 1 MB per
minute and the last minute's mean is at most 5 % above the second minute's (memory given back is not a leak).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import ingest, postgres
from bench.served import WORKERS, Watch, serve

CONCURRENCY = 32


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    n = len(samples)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in samples) / n
    my = sum(r for _, r in samples) / n
    var = sum((t - mx) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    return 60 * sum((t - mx) * (r - my) for t, r in samples) / var


def run(server: postgres.Server, quick: bool, work: Path, minutes: float | None = None) -> dict[str, Any]:
    total_s = 4.0 if quick else 60.0 * (minutes or 10.0)
    chunk_s = 2.0 if quick else 60.0
    database, url = ingest.prepare_database(server)
    bodies_file = work / "memory-bodies.jsonl"
    bodies_file.write_text("".join(json.dumps(b, separators=(",", ":")) + "\n" for b in ingest.demo_bodies()))
    chunks = []
    try:
        with serve(url, work) as served, Watch(served.pid, interval=1.0 if not quick else 0.25) as watch:
            start_rss = watch.samples[-1][1] if watch.samples else None
            elapsed = 0.0
            while elapsed < total_s:
                tag = ingest._tag()
                w = ingest.wrk(served, CONCURRENCY, chunk_s, tag, bodies_file)
                v = ingest.verify(url, tag, w["acked"], CONCURRENCY)
                chunks.append(
                    {
                        "at_s": round(watch.now(), 1),
                        "throughput": w["throughput"],
                        "p99_ms": w["latency_ms"]["p99"],
                        "acked": w["acked"],
                        "stored": v["stored"],
                        "ok": v["ok"],
                    }
                )
                elapsed += chunk_s
            samples = [(round(t, 1), round(r, 1)) for t, r, _ in watch.samples]
        largest = watch.largest_process_mb()
    finally:
        server.drop(database)
    steady = [s for s in samples if s[0] >= samples[-1][0] * 0.1] if samples else []
    rss = [r for _, r in samples]
    minute = 60.0 if not quick else 1.0
    second = [r for t, r in samples if minute <= t < 2 * minute] or rss
    last = [r for t, r in samples if t >= samples[-1][0] - minute] or rss
    result = {
        "quick": quick,
        "duration_s": total_s,
        "concurrency": CONCURRENCY,
        "workers": WORKERS,
        "largest_process_mb": round(largest, 1) if largest is not None else None,
        "rss_mb_at_start": round(start_rss, 1) if start_rss is not None else None,
        "rss_mb_max": max(rss) if rss else None,
        "rss_mb_end": rss[-1] if rss else None,
        "slope_mb_per_min": round(slope_mb_per_min(steady), 3),
        "second_minute_mean": round(sum(second) / len(second), 1) if second else None,
        "last_minute_mean": round(sum(last) / len(last), 1) if last else None,
        "samples": samples,
        "chunks": chunks,
        "all_acked_stored": all(c["ok"] for c in chunks),
        "decisions": sum(c["acked"] for c in chunks),
    }
    print(
        f"  RSS start {result['rss_mb_at_start']} MB, max {result['rss_mb_max']} MB, end {result['rss_mb_end']} MB,"
        f" slope {result['slope_mb_per_min']} MB/min over {total_s:.0f} s ({result['decisions']} decisions)",
        flush=True,
    )
    return result
