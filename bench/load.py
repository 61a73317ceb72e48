"""The fallback load generator, for machines without `wrk` (CI's smoke test): asyncio + httpx in a separate
process, `connections` concurrent keep-alive clients POSTing the bodies in rotation for `seconds`, a new
decision_id each (the same scheme as bench/ingest.lua). Prints one line `RESULT {json}` shaped like the Lua
script's, so bench/ingest.py reads either. Slower than wrk (it competes with the server for the CPU): the
published numbers come from wrk.

    python -m bench.load URL CONNECTIONS SECONDS TAG BODIES_FILE
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import httpx

from bench.stats import percentile


async def _client(
    client: httpx.AsyncClient, i: int, url: str, bodies: list[str], tag: str, deadline: float,
    latencies: list[float], statuses: dict[str, int], errors: dict[str, int],
) -> None:  # fmt: skip
    counter = 0
    while time.monotonic() < deadline:
        counter += 1
        body = bodies[(counter - 1) % len(bodies)].replace("__DECISION_ID__", f"{tag}-{i:04x}-4000-8000-{counter:012x}")
        t0 = time.perf_counter()
        try:
            r = await client.post(url, content=body)
        except httpx.TimeoutException:
            errors["timeout"] += 1
            continue
        except httpx.HTTPError:
            errors["read"] += 1
            continue
        latencies.append((time.perf_counter() - t0) * 1e6)
        statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
        if r.status_code >= 400:
            errors["status"] += 1


async def run(url: str, connections: int, seconds: float, tag: str, bodies: list[str]) -> dict[str, object]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(timeout=10, headers=headers, limits=limits) as client:
        started = time.perf_counter()
        deadline = time.monotonic() + seconds
        await asyncio.gather(
            *(
                _client(client, i + 1, url, bodies, tag, deadline, latencies, statuses, errors)
                for i in range(connections)
            )
        )
        duration = time.perf_counter() - started
    ordered = sorted(latencies)
    mean = sum(ordered) / len(ordered) if ordered else 0.0
    stdev = (sum((x - mean) ** 2 for x in ordered) / len(ordered)) ** 0.5 if ordered else 0.0
    return {
        "duration_us": int(duration * 1e6),
        "requests": len(ordered),
        "bytes": 0,
        "errors": errors,
        "statuses": statuses,
        "latency_us": {
            "min": ordered[0] if ordered else 0,
            "mean": mean,
            "stdev": stdev,
            "max": ordered[-1] if ordered else 0,
            "p50": percentile(ordered, 50) if ordered else 0,
            "p90": percentile(ordered, 90) if ordered else 0,
            "p99": percentile(ordered, 99) if ordered else 0,
            "p99.9": percentile(ordered, 99.9) if ordered else 0,
        },
    }


def main() -> None:
    url, connections, seconds, tag, bodies_file = sys.argv[1:6]
    bodies = [line for line in Path(bodies_file).read_text().splitlines() if line]
    result = asyncio.run(run(url, int(connections), float(seconds), tag, bodies))
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
