"""Ingestion throughput with authentication on and off, in one run: the cost of checking a token on every request.

    python -m bench.auth                          # 4 rounds × 12 s per setting at concurrency 32, and 6 s at 1
    python -m bench.auth --seconds 3 --rounds 1 --out /tmp/auth.json   # a quick look

Two `mandate serve --workers <cores>` processes (bench/served.py) on one database with the demo governance: one
started as in production (authentication on), one with `--insecure-no-auth` (as the ingestion benchmark's recorded
results were measured). An agent token for the demo's domains is issued for the load generator (what an agent sends
decisions with in production), which sends it to both (the server without authentication ignores the header), so
the two loads are byte for byte the same.
Rounds alternate (off, on, then on, off, …) with bench/ingest.py's load (wrk with `-H`, or bench/load.py), so
drift on a shared machine hits both alike; the server's CPU per decision (all its processes) is measured too, the
figure least disturbed by neighbours on the CPU. Before the rounds, the authenticated server must refuse a decision
without a token (401) and the other accept it. After each run every acknowledged decision is counted in SQL, the
authenticated server's decisions must carry the token's id, and every request must have been answered 200/201.
Finally the authentication middleware alone is timed in this process, checking the same token with the server's
token cache (a database lookup per second) and not checking, around an app that does nothing: its cost in CPU per
request, which neighbours on the CPU cannot blur. The target (issue 16): on ≥ 95 % of off.
Results: docs/benchmarks.md ("Authentication on vs off").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg

from bench import postgres
from bench.ingest import LUA, _tag, demo_bodies, prepare_database, verify
from bench.served import WORKERS, Served, cpu_seconds, serve

TARGET = 0.95
TOKEN_VARIABLE = "MANDATE_BENCH_TOKEN"


def issue(url: str) -> tuple[UUID, str]:
    """An agent token for the demo's domains, as `mandate token create --role agent --domains …` issues it."""
    from mandate.db import tokens as tq
    from mandate.demo.scenarios import ALL, ORGANIZATION_ID
    from mandate.tokens import Role, digest, new_secret

    secret = new_secret()
    with psycopg.connect(url, autocommit=True) as conn:
        token_id = tq.issue(
            conn,
            secret_sha256=digest(secret),
            name="bench load generator",
            organization_id=UUID(ORGANIZATION_ID),
            domains=frozenset(s.domain for s in ALL),
            role=Role.AGENT,
            expires_at=None,
        )
    return token_id, secret


def load(served: Served, connections: int, seconds: float, tag: str, bodies: Path, token: str) -> dict[str, Any]:
    """bench/ingest.py's load (wrk, or bench/load.py where wrk is missing), every request with the bearer token."""
    exe = None if os.environ.get("MANDATE_BENCH_LOAD") == "python" else shutil.which("wrk")
    url = served.base_url + "/api/v1/decisions"
    env = {**os.environ, TOKEN_VARIABLE: token}
    if exe is not None:
        cmd = [exe, f"-t{1 if connections < 8 else 2}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
        cmd += ["--timeout", "10s", "-H", f"Authorization: Bearer {token}", "-s", str(LUA), url, "--", tag, str(bodies)]
    else:
        root = str(Path(__file__).resolve().parent.parent)
        cmd = [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {root!r}); from bench.auth import generator; generator()",
        ]
        cmd += [url, str(connections), str(seconds), tag, str(bodies)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True, env=env)
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line[len("RESULT ") :])
    result["generator"] = "wrk" if exe is not None else "bench/load.py (asyncio + httpx)"
    acked = sum(n for code, n in result["statuses"].items() if code in ("200", "201"))
    result["acked"] = acked
    result["throughput"] = round(acked / (result["duration_us"] / 1e6), 1)
    result["latency_ms"] = {k: round(v / 1000, 3) for k, v in result.pop("latency_us").items()}
    return result


def generator() -> None:
    """bench/load.py, its client sending `Authorization: Bearer $MANDATE_BENCH_TOKEN` (in its own process)."""
    import httpx

    from bench import load as python_load

    headers = {"authorization": f"Bearer {os.environ[TOKEN_VARIABLE]}"}

    class WithToken(httpx.AsyncClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["headers"] = {**(kwargs.get("headers") or {}), **headers}
            super().__init__(*args, **kwargs)

    httpx.AsyncClient = WithToken  # type: ignore[misc]  # this process only: the generator's one client
    python_load.main()


def _check_refusal(off: Served, on: Served, body: dict[str, Any]) -> dict[str, int]:
    """One decision without a token to each server: the authenticated one must answer 401, the other 200/201."""
    codes = {}
    for name, served in (("off", off), ("on", on)):
        sent = {**body, "decision_id": f"0badc0de-{'0' if name == 'off' else '1'}000-4000-8000-000000000001"}
        codes[name] = httpx.post(served.base_url + "/api/v1/decisions", json=sent, timeout=10).status_code
    if codes["on"] != 401 or codes["off"] not in (200, 201):
        raise RuntimeError(f"a decision without a token: expected 401 (on) and 200/201 (off), got {codes}")
    return codes


def _sent_with(url: str, tag: str, token_id: UUID) -> int:
    low, high = f"{tag}-0000-0000-0000-000000000000", f"{tag}-ffff-ffff-ffff-ffffffffffff"
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM mandate.decision_events WHERE decision_id BETWEEN %s AND %s AND token_id = %s",
            (low, high, token_id),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def _middleware_us(url: str, secret: str, requests: int) -> dict[str, float]:
    """CPU µs per request of `web/auth.py`'s middleware with the token checked ("on") and not ("off"), in this process
    (best of 5 passes), around an app that does nothing; the token cache as the server builds it, on a real pool."""
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool
    from starlette.datastructures import State
    from starlette.types import Receive, Scope, Send

    from mandate.web.auth import Authenticate, Failures, Tokens

    async def nothing(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url, min_size=1, max_size=1, open=False, kwargs={"autocommit": True, "row_factory": dict_row}
    )
    await pool.open()
    try:
        app = type("App", (), {"state": State({"tokens": Tokens(pool), "auth_failures": Failures()})})
        headers = [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {secret}".encode()),
        ]
        out = {}
        for name, enabled in (("off", False), ("on", True)):
            middleware = Authenticate(nothing, enabled=enabled)
            best = float("inf")
            for _ in range(5):
                t0 = time.process_time()
                for _ in range(requests):
                    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/api/v1/decisions"}
                    scope |= {"headers": headers, "app": app, "client": ("127.0.0.1", 40000)}
                    await middleware(scope, nothing, nothing)  # type: ignore[arg-type]  # never called
                    if enabled and "principal" not in scope["state"]:
                        raise RuntimeError("the token was not accepted by the middleware")
                best = min(best, time.process_time() - t0)
            out[name] = round(1e6 * best / requests, 2)
        out["added"] = round(out["on"] - out["off"], 2)
        return out
    finally:
        await pool.close()


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "throughput": [r["throughput"] for r in runs],
        "mean": round(statistics.mean(r["throughput"] for r in runs), 1),
        "p50_ms": round(statistics.median(r["latency_ms"]["p50"] for r in runs), 3),
        "p99_ms": round(statistics.median(r["latency_ms"]["p99"] for r in runs), 3),
        "server_cpu_ms": round(statistics.median(r.get("server_cpu_ms", float("nan")) for r in runs), 3),
        "refused": sum(n for r in runs for code, n in r["statuses"].items() if code in ("401", "403", "429")),
        # any other answer than 200/201, and requests that got none (the generator's "status" error is a non-2xx)
        "failed": sum(n for r in runs for code, n in r["statuses"].items() if code not in ("200", "201"))
        + sum(n for r in runs for kind, n in r["errors"].items() if kind != "status"),
        "stored_ok": all(r["verification"]["ok"] for r in runs),
    }


def run(seconds: float, rounds: int, levels: tuple[int, ...]) -> dict[str, Any]:
    results: dict[str, Any] = {"seconds": seconds, "rounds": rounds, "workers": WORKERS, "levels": {}}
    runs: dict[int, dict[str, list[dict[str, Any]]]] = {c: {"off": [], "on": []} for c in levels}
    with postgres.server() as server, tempfile.TemporaryDirectory(prefix="mandate-bench-auth-") as tmp:
        work = Path(tmp)
        database, url = prepare_database(server)
        token_id, secret = issue(url)
        bodies = work / "bodies.jsonl"
        bodies.write_text("".join(json.dumps(b, separators=(",", ":")) + "\n" for b in demo_bodies()))
        try:
            with serve(url, work) as off, serve(url, work, auth=True) as on:
                servers = {"off": off, "on": on}
                results["without_token"] = _check_refusal(off, on, json.loads(bodies.read_text().splitlines()[0]))
                for served in (off, on):  # warm-up: imports, pool, caches, prepared statements
                    load(served, 8, 2, _tag(), bodies, secret)
                for i in range(rounds):
                    order = ("off", "on") if i % 2 == 0 else ("on", "off")
                    for c in levels:
                        for name in order:
                            tag = _tag()
                            cpu_before = cpu_seconds(servers[name].pid)
                            w = load(servers[name], c, seconds if c > 1 else max(1.0, seconds / 2), tag, bodies, secret)
                            cpu_after = cpu_seconds(servers[name].pid)
                            if cpu_before is not None and cpu_after is not None and w["acked"]:
                                w["server_cpu_ms"] = round(1000 * (cpu_after - cpu_before) / w["acked"], 3)
                            w["verification"] = verify(url, tag, w["acked"], c)
                            if name == "on":
                                w["verification"]["with_token_id"] = _sent_with(url, tag, token_id)
                                w["verification"]["ok"] &= (
                                    w["verification"]["with_token_id"] == w["verification"]["stored"]
                                )
                            runs[c][name].append(w)
                            print(
                                f"  round {i + 1} c={c:<2} {name:>3}: {w['throughput']:>7.1f} decisions/s, "
                                f"p50 {w['latency_ms']['p50']} ms, p99 {w['latency_ms']['p99']} ms, "
                                f"server CPU {w.get('server_cpu_ms')} ms/decision",
                                flush=True,
                            )
            results["middleware_us"] = asyncio.run(_middleware_us(url, secret, 20_000))
        finally:
            server.drop(database)
    for c, by in runs.items():
        off_s, on_s = _summary(by["off"]), _summary(by["on"])
        ratios = [n["throughput"] / f["throughput"] for n, f in zip(by["on"], by["off"], strict=True)]  # by round
        results["levels"][str(c)] = {
            "off": off_s,
            "on": on_s,
            "ratio": round(on_s["mean"] / off_s["mean"], 3),  # on / off, of the means
            "round_ratios": [round(r, 3) for r in ratios],
            # Server CPU per decision, on / off (medians): what the token check costs, less sensitive than the
            # throughput to neighbours taking the CPU (the throughput is CPU-bound: 2 shared cores).
            "server_cpu_ratio": round(on_s["server_cpu_ms"] / off_s["server_cpu_ms"], 3),
        }
    results["generator"] = runs[levels[0]]["off"][0]["generator"]
    results["target"] = TARGET
    results["met"] = all(v["ratio"] >= TARGET for v in results["levels"].values())
    results["ok"] = all(
        v[s]["stored_ok"] and v[s]["failed"] == 0 for v in results["levels"].values() for s in ("off", "on")
    )
    m = results["middleware_us"]
    print(f"the authentication middleware alone: {m['on']} µs per request checking the token, {m['off']} µs not")
    for c, v in results["levels"].items():
        print(
            f"c={c}: on/off throughput {v['ratio']:.3f} (target ≥ {TARGET}); per round {v['round_ratios']}; "
            f"server CPU per decision on/off {v['server_cpu_ratio']:.3f}"
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=12.0, help="seconds per run at concurrency > 1 (half at 1)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds (each: both settings, alternating order)")
    parser.add_argument("--levels", default="32,1", help="concurrency levels, comma-separated")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    results = run(args.seconds, args.rounds, tuple(int(c) for c in args.levels.split(",")))
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if results["met"] and results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
