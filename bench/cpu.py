"""Where one decision's CPU goes (issue 20, item 1): the server's CPU per decision split by layer, one decision at a
time, in one run.

    python -m bench.cpu                   # 600 decisions per round in process, 10 s over HTTP, 3 rounds each
    python -m bench.cpu --quick           # tiny (a smoke run)

On the benchmark's own PostgreSQL (bench/postgres.py), one database at the head schema with the demo governance and
2,000 stored decisions (bench/ingest.py `prepare_database`). The decisions are the eight demo scenarios in rotation,
each with a fresh decision_id, sent one after the other (no batching: every write is its own group-commit batch).

- **Over HTTP**: `mandate serve --workers 1` loaded by wrk at concurrency 1 (bench/ingest.py `wrk`); the server
  process's CPU (user + system) per answered decision.
- **In process**: the same app (`create_app`, authentication off as the other benchmarks run it) called as an ASGI
  application by this process on uvloop, without an HTTP server: the process's CPU (`time.process_time`) per
  decision, and the share of named parts, each timed by wrapping the function the route calls (a wrapper's two
  readings of the process clock cost ~3 µs): the body read and validated (`inputs.read_json_body`), the request built
  (`api.to_request`), the approval facts read for the stages approvals concern (`StageReader.stages` and
  `ingest.approval_facts`: a query), `service.prepare` (of which `decide`: attribution, evaluation and the observe
  phase; and `explanation_dict`), the group-commit write (`GroupCommit._write`: the statement, its parameters and
  the wait for the commit) and the access-log line (`log.info` of the request middleware). What is left is the
  middleware, routing, the response and asyncio's own work between them.
- **References**: a psycopg round trip (`SELECT 1`) on an async connection (uvloop) against a blocking one, and a
  30-parameter `SELECT` the same two ways — what asyncio adds to each statement.

HTTP minus in process is the HTTP server's share (uvicorn, httptools, the socket's system calls). Rounds alternate
in process and over HTTP, each in-process round in a new Python process (a process that has built several apps gets
slower as its heap grows); the median of the rounds is reported. After the run SQL counts every decision answered.

Results: `bench/results/cpu.json`; prose in bench/findings.md (ingestion). Not part of `bench all`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import logging.config
import multiprocessing
import secrets
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

import psycopg

from bench import postgres
from bench.ingest import SEEDED, demo_bodies, prepare_database, verify, wrk
from bench.machine import facts, record, standalone_parser
from bench.served import cpu_seconds, serve

RESULTS = Path(__file__).resolve().parent / "results" / "cpu.json"
PARTS = (
    "body read and validated",
    "request built",
    "approval facts read",
    "prepare",
    "prepare: decide (attribution, evaluation, observe)",
    "prepare: explanation",
    "group-commit write",
    "access-log line",
)
"""The named parts, in the order a request meets them; `prepare: …` are inside `prepare`."""


class Parts:
    """Process CPU time spent inside wrapped functions, by part name."""

    def __init__(self) -> None:
        self.spent: defaultdict[str, float] = defaultdict(float)
        self._undo: list[Callable[[], None]] = []

    def sync(self, owner: Any, name: str, part: str) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.spent[part] += time.process_time() - started

        self._replace(owner, name, original, timed)

    def coroutine(self, owner: Any, name: str, part: str) -> None:
        original: Callable[..., Awaitable[Any]] = getattr(owner, name)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return await original(*args, **kwargs)
            finally:
                self.spent[part] += time.process_time() - started

        self._replace(owner, name, original, timed)

    def _replace(self, owner: Any, name: str, original: Any, timed: Any) -> None:
        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def undo(self) -> None:
        for step in reversed(self._undo):
            step()
        self._undo.clear()


def instrument(parts: Parts) -> None:
    """Wrap the functions the decision route calls (by the names the calling modules look them up under)."""
    from mandate import group_commit
    from mandate.service import StageReader
    from mandate.web import api, inputs
    from mandate.web import app as web_app

    ingest = sys.modules["mandate.service.ingest"]  # the package exports functions of the same names
    prepare = sys.modules["mandate.service.prepare"]
    parts.coroutine(inputs, "read_json_body", "body read and validated")
    parts.sync(api, "to_request", "request built")
    parts.coroutine(StageReader, "stages", "approval facts read")  # an `executed` stage's stored stages
    parts.coroutine(ingest, "approval_facts", "approval facts read")  # what else a resume or a PAUSEd gate needs
    parts.sync(ingest, "prepare", "prepare")
    parts.sync(prepare, "decide", "prepare: decide (attribution, evaluation, observe)")
    parts.sync(prepare, "explanation_dict", "prepare: explanation")
    parts.coroutine(group_commit.GroupCommit, "_write", "group-commit write")
    parts.sync(web_app.log, "info", "access-log line")


def bodies(count: int, tag: str) -> list[bytes]:
    """`count` demo decision bodies in rotation, each with its own decision_id (`tag` is its first group)."""
    demo = demo_bodies()
    out = []
    for i in range(count):
        body = {**demo[i % len(demo)], "decision_id": f"{tag}-0000-4000-8000-{i:012x}"}
        out.append(json.dumps(body, separators=(",", ":")).encode())
    return out


async def call(app: Any, body: bytes) -> int:
    """POST one decision to the ASGI `app`; its status."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/api/v1/decisions", "raw_path": b"/api/v1/decisions", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


def in_process(url: str, count: int, warm: int, log_file: TextIO) -> dict[str, Any]:
    """`count` decisions through the app in this process (after `warm` not measured): CPU µs per decision, whole and
    by part. The app logs to `log_file` as the server logs to its standard error."""
    import uvloop

    from mandate.web import logs
    from mandate.web.app import create_app

    async def main() -> dict[str, Any]:
        app = create_app(url, auth=False)
        logging.config.dictConfig(logs.configure("INFO"))  # as `mandate serve` logs: JSON lines, to a file here
        for handler in logging.getLogger("mandate").handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(log_file)
        async with app.router.lifespan_context(app):
            for body in bodies(warm, secrets.token_hex(4)):  # imports, caches, the pool, prepared statements
                assert await call(app, body) == 201
            tag = secrets.token_hex(4)
            sent = bodies(count, tag)
            parts = Parts()
            instrument(parts)
            try:
                started = time.process_time()
                for body in sent:
                    status = await call(app, body)
                    assert status == 201, status
                spent = time.process_time() - started
            finally:
                parts.undo()
        return {
            "tag": tag,
            "decisions": count,
            "total_us": round(1e6 * spent / count, 1),
            "parts_us": {p: round(1e6 * parts.spent[p] / count, 1) for p in PARTS},
        }

    result: dict[str, Any] = uvloop.run(main())
    return result


def in_fresh_process(url: str, count: int, warm: int, log_path: Path) -> dict[str, Any]:
    """`in_process` in a new Python process (each round starts from the same state: a long-lived process that has
    built several apps runs slower and slower, as its heap grows)."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        result: dict[str, Any] = pool.submit(_in_process_logging_to, url, count, warm, str(log_path)).result()
    return result


def _in_process_logging_to(url: str, count: int, warm: int, log_path: str) -> dict[str, Any]:
    with open(log_path, "a", encoding="utf-8") as log_file:
        return in_process(url, count, warm, log_file)


def round_trips(url: str, count: int) -> dict[str, float]:
    """CPU µs per statement: `SELECT 1` and a 30-parameter `SELECT`, on an async (uvloop) and a blocking connection."""
    import uvloop

    many = "SELECT " + ", ".join(f"${i}::text" for i in range(1, 31))
    values = [f"value {i}" for i in range(30)]
    statements = {"SELECT 1": ("SELECT 1", None), "SELECT of 30 parameters": (many, values)}
    out: dict[str, float] = {}

    async def run_async() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            for label, (query, params) in statements.items():
                for _ in range(2):  # the first pass warms (psycopg prepares a statement run 5 times)
                    started = time.process_time()
                    for _ in range(count):
                        cursor = psycopg.AsyncRawCursor(conn)
                        await cursor.execute(query, params)
                        await cursor.fetchone()
                    out[f"{label}, async"] = round(1e6 * (time.process_time() - started) / count, 1)

    uvloop.run(run_async())
    with psycopg.connect(url, autocommit=True) as conn:
        for label, (query, params) in statements.items():
            for _ in range(2):
                started = time.process_time()
                for _ in range(count):
                    cursor = psycopg.RawCursor(conn)
                    cursor.execute(query, params)
                    cursor.fetchone()
                out[f"{label}, blocking"] = round(1e6 * (time.process_time() - started) / count, 1)
    return out


def over_http(url: str, work: Path, seconds: float) -> dict[str, Any]:
    """wrk at concurrency 1 for `seconds` against `mandate serve --workers 1` (after a warm-up): the server's CPU µs
    per decision."""
    bodies_file = work / "bodies.jsonl"
    bodies_file.write_text("".join(json.dumps(b, separators=(",", ":")) + "\n" for b in demo_bodies()))
    with serve(url, work, workers=1) as served:
        wrk(served, 1, min(seconds, 3.0), secrets.token_hex(4), bodies_file)
        tag = secrets.token_hex(4)
        before = cpu_seconds(served.pid)
        result = wrk(served, 1, seconds, tag, bodies_file)
        after = cpu_seconds(served.pid)
    assert before is not None and after is not None
    acked = result["acked"]
    return {
        "tag": tag,
        "decisions": acked,
        "total_us": round(1e6 * (after - before) / acked, 1),
        "p50_ms": result["latency_ms"]["p50"],
        "verification": verify(url, tag, acked, 1),
    }


def median(rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], float]) -> float:
    return round(statistics.median(key(r) for r in rows), 1)


def run(server: postgres.Server, count: int, seconds: float, rounds: int, warm: int) -> dict[str, Any]:
    database, url = prepare_database(server, seeded=SEEDED)
    try:
        with tempfile.TemporaryDirectory(prefix="mandate-bench-cpu-") as tmp:
            process_rows: list[dict[str, Any]] = []
            http_rows: list[dict[str, Any]] = []
            for _ in range(rounds):  # alternate, so that drift on the shared machine falls on both
                process_rows.append(in_fresh_process(url, count, warm, Path(tmp) / "in-process.log"))
                http_rows.append(over_http(url, Path(tmp), seconds))
            references = round_trips(url, max(200, count))
        with psycopg.connect(url, autocommit=True) as conn:
            for r in process_rows:  # every decision answered 201 in process is stored (over HTTP: `verify`)
                row = conn.execute(
                    "SELECT count(*) FROM mandate.decision_events WHERE left(decision_id::text, 8) = %s", (r["tag"],)
                ).fetchone()
                r["stored"] = int(row[0]) if row else 0
    finally:
        server.drop(database)
    whole = median(process_rows, lambda r: r["total_us"])
    parts = {p: round(statistics.median(r["parts_us"][p] for r in process_rows), 1) for p in PARTS}
    named = sum(v for p, v in parts.items() if not p.startswith("prepare: "))
    http = median(http_rows, lambda r: r["total_us"])
    return {
        "decisions_per_round_in_process": count,
        "seconds_per_round_over_http": seconds,
        "rounds": rounds,
        "in_process": process_rows,
        "over_http": http_rows,
        "summary_us": {
            "over HTTP (server process)": http,
            "HTTP server layer (over HTTP minus in process)": round(http - whole, 1),
            "in process (the app)": whole,
            **parts,
            "the rest: middleware, routing, response, asyncio": round(whole - named, 1),
        },
        "round_trips_us": references,
        "ok": all(r["verification"]["ok"] for r in http_rows)
        and all(r["stored"] == r["decisions"] for r in process_rows),
    }


def table(results: dict[str, Any]) -> str:
    s = results["summary_us"]
    whole = s["over HTTP (server process)"]
    lines = ["| part | CPU µs per decision | share of the server's |", "|---|---:|---:|"]
    for part, value in s.items():
        lines.append(f"| {part} | {value:,.1f} | {100 * value / whole:.0f} % |")
    lines += ["", "| statement, connection | CPU µs per statement |", "|---|---:|"]
    lines += [f"| {k} | {v:,.1f} |" for k, v in results["round_trips_us"].items()]
    return "\n".join(lines)


def main() -> int:
    parser = standalone_parser(__doc__, RESULTS)
    args = parser.parse_args()
    started = time.perf_counter()
    count, seconds, rounds, warm = (40, 1.0, 1, 16) if args.quick else (600, 10.0, 3, 200)
    with postgres.server() as server:
        results = {
            "machine": facts(),
            "command": "python -m bench.cpu" + (" --quick" if args.quick else ""),
            "postgres": server.facts(),
            **run(server, count, seconds, rounds, warm),
        }
    record(results, args.out or (None if args.quick else RESULTS), started)
    print(table(results))
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
