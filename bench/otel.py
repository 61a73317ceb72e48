"""Ingestion throughput with OpenTelemetry off and on (exporting), in one run: the overhead of telemetry.

    python -m bench.otel                       # 4 rounds × 15 s per setting at concurrency 32
    python -m bench.otel --seconds 3 --rounds 1 --out /tmp/otel.json   # a quick look

Two `mandate serve --workers 1` processes on one database with the demo governance: one with no OTEL_* variable
(telemetry off), one with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a loopback OTLP/HTTP sink in this process
(spans batched and exported, metrics exported every second, the GenAI opt-in on: the most attributes). Rounds
alternate off, on, off, on … with the same load generator (bench/ingest.py's: wrk, or bench/load.py), so drift on
a shared machine hits both alike. The target (issue 18): throughput on ≥ 90 % of off. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench import postgres
from bench.ingest import _tag, demo_bodies, prepare_database, wrk
from bench.served import Served, free_port

TARGET = 0.90


@contextmanager
def otlp_sink() -> Iterator[tuple[str, dict[str, int]]]:
    """A loopback OTLP/HTTP endpoint that accepts (and counts) every export, answering 200."""
    counts = {"/v1/traces": 0, "/v1/metrics": 0, "bytes": 0}
    lock = threading.Lock()

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with lock:
                counts[self.path] = counts.get(self.path, 0) + 1
                counts["bytes"] += len(body)
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", counts
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@contextmanager
def serving(database_url: str, work: Path, otel_endpoint: str | None) -> Iterator[Served]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["DATABASE_URL"] = database_url
    if otel_endpoint is not None:
        env |= {
            "OTEL_EXPORTER_OTLP_ENDPOINT": otel_endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
        }
    log = work / f"serve-{'on' if otel_endpoint else 'off'}-{port}.log"
    command = [sys.executable, "-m", "mandate", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "1", "--insecure-no-auth"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    served = Served(process, port, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mandate serve exited with {process.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(served.base_url + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mandate serve did not become healthy in 60 s")
            time.sleep(0.2)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def run(seconds: float, rounds: int, connections: int) -> dict[str, Any]:
    results: dict[str, Any] = {"seconds": seconds, "rounds": rounds, "concurrency": connections, "off": [], "on": []}
    with postgres.server() as server, tempfile.TemporaryDirectory(prefix="mandate-bench-otel-") as tmp:
        work = Path(tmp)
        database, url = prepare_database(server)
        bodies = work / "bodies.jsonl"
        bodies.write_text("".join(json.dumps(b, separators=(",", ":")) + "\n" for b in demo_bodies()))
        try:
            with otlp_sink() as (endpoint, counts), serving(url, work, None) as off, serving(url, work, endpoint) as on:
                for served in (off, on):  # warm-up: imports, pool, caches, prepared statements
                    wrk(served, 8, 2, _tag(), bodies)
                for _ in range(rounds):
                    for name, served in (("off", off), ("on", on)):
                        w = wrk(served, connections, seconds, _tag(), bodies)
                        results[name].append(w["throughput"])
                        print(f"  {name:>3}: {w['throughput']:>7.1f} decisions/s, p99 {w['latency_ms']['p99']} ms")
            results["exports"] = dict(counts)
        finally:
            server.drop(database)
    off_mean, on_mean = statistics.mean(results["off"]), statistics.mean(results["on"])
    results["ratio"] = round(on_mean / off_mean, 3)
    results["target"] = TARGET
    results["met"] = results["ratio"] >= TARGET
    print(f"on/off throughput: {results['ratio']:.3f} (target ≥ {TARGET}); exports received: {results['exports']}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per round and setting")
    parser.add_argument("--rounds", type=int, default=4, help="rounds (each: off, then on)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections of the load")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    results = run(args.seconds, args.rounds, args.connections)
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if results["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
