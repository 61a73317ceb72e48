"""Ingestion over HTTP: `mandate serve` on a dedicated PostgreSQL with the demo governance, loaded by `wrk` from a
separate process on loopback at concurrency 1, 8, 32 and 64, each level bounded in time.

The reference, in the same run and on the same tables: `pgbench` executing exactly the statement the server sends
per decision (decision, verdict, two timeline entries; one transaction; durable commit), with the parameter values
the server computes for the same demo decisions, as prepared statements — the limit of this PostgreSQL for
per-decision transactions. A second reference, pgbench with 8 decisions per transaction, shows what group commit
could reach.

After every load level the decisions it stored are counted with SQL: every acknowledged decision must be stored
with its verdict and its two timeline entries (stored − acknowledged ≤ connections: requests cut off by the end
of the run may be stored without their answer being read).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench import postgres
from bench.served import WORKERS, Served, Watch, cpu_seconds, own_children_cpu_seconds, serve
from bench.stats import summary

CONCURRENCY = (1, 8, 32, 64)
LUA = Path(__file__).with_name("ingest.lua")
SENTINEL_DECISION = uuid.UUID("0badc0de-0000-4000-8000-00000000d1d1")
SENTINEL_VERDICT = uuid.UUID("0badc0de-0000-4000-8000-00000000fefe")
PLACEHOLDER = "__DECISION_ID__"


# -- the database and the demo decisions -------------------------------------------------------------------------


SEEDED = 2_000
"""Decisions the ingestion benchmark's database holds before any load (`seed`)."""


def prepare_database(server: postgres.Server, seeded: int = 0) -> tuple[str, str]:
    """A new database at the head schema with the demo governance applied, holding `seeded` demo decisions (`seed`)."""
    from mandate.apply import apply_bundle
    from mandate.governance.bundle import load_demo_bundle
    from mandate.migrate.runner import Runner

    name = server.create("ingest")
    url = server.url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        Runner(conn).up()
        apply_bundle(conn, load_demo_bundle())
    if seeded:
        seed(url, demo_bodies(), seeded)
    return name, url


def seed(url: str, bodies: list[dict[str, Any]], count: int = SEEDED) -> None:
    """Store `count` of `bodies` (in rotation, each with a new decision_id) by the server's own statements, then
    ANALYZE: a database as one in service is, not an empty one. In an empty database every new connection plans
    its foreign-key checks for empty tables — sequential scans, kept for the connection's life until an ANALYZE
    invalidates them — so each decision costs PostgreSQL more than the last: 1.0 → 3.7 ms of CPU per decision over
    the first 3,000 (docs/benchmarks.md, "Ingestion"), which the first load levels measured instead of the server."""
    from mandate.db.connect import use_fast_json

    write_sets = asyncio.run(_write_sets(url, bodies))
    with psycopg.connect(url, autocommit=True) as conn:
        use_fast_json(conn)
        with conn.transaction():
            for i in range(count):
                statement, params = write_sets[i % len(write_sets)]
                fresh = {**params, "decision_id": uuid.uuid4(), "verdict_id": uuid.uuid4()}
                conn.execute(statement, fresh)  # type: ignore[arg-type]  # the server's own statement
        conn.execute("ANALYZE")


def demo_bodies() -> list[dict[str, Any]]:
    """The demo scenarios as upstream-shaped request bodies (DEMO-GOVERNANCE.md), one per scenario."""
    from mandate.demo import scenarios

    bodies = []
    for s in scenarios.ALL:
        body: dict[str, Any] = {
            "decision_id": PLACEHOLDER,
            "organization_id": scenarios.ORGANIZATION_ID,
            "domain_name": s.domain,
            "intent": s.intent,
            "stage": s.stage,
            "actor": s.actor,
            "target": s.target,
            "context": dict(s.context),
            "scope": dict(s.scope),
        }
        if s.unstructured_context:
            body["unstructured_context"] = s.unstructured_context
        bodies.append(body)
    return bodies


async def _write_sets(url: str, bodies: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The statement and parameters the server writes for each body (`service.prepare`, as the decision route
    calls it), with the sentinel ids pgbench replaces by a fresh one per transaction."""
    from mandate import service
    from mandate.db.governance import load_governance
    from mandate.web.api import DecisionBody, to_request

    out = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as c:
        governance = await load_governance(c)
        for body in bodies:
            data = {**body, "decision_id": str(SENTINEL_DECISION)}
            req = to_request(DecisionBody.model_validate(data), datetime.now(UTC))
            facts = await service.approval_facts(c, req) if service.concerns_approvals(req) else None
            prepared = service.prepare(governance, req, facts=facts)
            out.append((prepared.statement, {**prepared.params, "verdict_id": SENTINEL_VERDICT}))
    return out


def pgbench_scripts(
    url: str, work: Path, tag: str, bodies: list[dict[str, Any]] | None = None
) -> tuple[list[Path], list[str], Path]:
    """One pgbench script per decision of `bodies` (the demo's by default: the server's statement, its parameter
    values, a new decision_id per transaction), the -D variable definitions they need, and a script writing them
    all in one transaction."""
    write_sets = asyncio.run(_write_sets(url, demo_bodies() if bodies is None else bodies))
    scripts: list[Path] = []
    defines: dict[str, str] = {}
    batch: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        for i, (statement, params) in enumerate(write_sets):
            with conn.transaction(force_rollback=True):
                conn.execute(statement, params, prepare=True)  # type: ignore[arg-type]  # the server's own statement
                row = conn.execute(
                    "SELECT statement, parameter_types::text[] FROM pg_prepared_statements ORDER BY prepare_time DESC"
                ).fetchone()
            assert row is not None
            text, types = row
            values = [
                conn.execute(sql.SQL("SELECT ({})::text").format(sql.Placeholder()), [v]).fetchone()[0]  # type: ignore[index]
                for v in _ordered_values(statement, params, len(types))
            ]
            decision = f"('{tag}-{i:04x}-4000-8000-' || lpad(to_hex(:n::bigint), 12, '0'))::uuid"
            # The verdict id appears more than once (a PAUSE's approval request is keyed by it): one value per row.
            verdict = f"('{tag}-{i:04x}-4000-9000-' || lpad(to_hex(:n::bigint), 12, '0'))::uuid"

            def param(match: re.Match[str], i: int = i, values: list[Any] = values, types: list[str] = types) -> str:
                k = int(match.group(1)) - 1
                value, kind = values[k], types[k]
                if value == str(SENTINEL_DECISION):
                    return decision  # noqa: B023 - bound per script on purpose
                if value == str(SENTINEL_VERDICT):
                    return verdict  # noqa: B023 - bound per script on purpose
                if value is None:
                    return f"NULL::{kind}"
                defines[f"s{i}_{k + 1}"] = value
                return f":s{i}_{k + 1}::{kind}"

            body = re.sub(r"\$(\d+)\b", param, text.strip().rstrip(";"))
            path = work / f"decision-{i}.sql"
            path.write_text(f"\\set n random(1, 281474976710655)\n{body};\n")
            scripts.append(path)
            batch.append(f"\\set n random(1, 281474976710655)\n{body};\n")
    batch_path = work / "decisions-x8.sql"
    batch_path.write_text("BEGIN;\n" + "".join(batch) + "COMMIT;\n")
    return scripts, [arg for name, value in defines.items() for arg in ("-D", f"{name}={value}")], batch_path


def _ordered_values(statement: str, params: dict[str, Any], count: int) -> list[Any]:
    """The parameters in $n order: psycopg numbers named placeholders by first appearance."""
    names: list[str] = []
    for name in re.findall(r"%\((\w+)\)s", statement):
        if name not in names:
            names.append(name)
    assert len(names) == count, (len(names), count)
    return [params[name] for name in names]


# -- load --------------------------------------------------------------------------------------------------------


def wrk(served: Served, connections: int, seconds: float, tag: str, bodies_file: Path) -> dict[str, Any]:
    """Load the server from a separate process: wrk with bench/ingest.lua, or bench/load.py where wrk is missing."""
    exe = None if os.environ.get("MANDATE_BENCH_LOAD") == "python" else shutil.which("wrk")
    url = served.base_url + "/api/v1/decisions"
    if exe is not None:
        threads = 1 if connections < 8 else 2
        cmd = [exe, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
        cmd += ["-s", str(LUA), url, "--", tag, str(bodies_file)]
        shown = [*cmd[:-3], "--", "<tag>", "<bodies.jsonl>"]
    else:
        root = str(Path(__file__).resolve().parent.parent)
        cmd = [sys.executable, "-c", f"import sys; sys.path.insert(0, {root!r}); from bench.load import main; main()"]
        cmd += [url, str(connections), str(seconds), tag, str(bodies_file)]
        shown = ["python -m bench.load", url, str(connections), str(seconds), "<tag>", "<bodies.jsonl>"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line[len("RESULT ") :])
    result["command"] = " ".join(shown)
    result["generator"] = "wrk" if exe is not None else "bench/load.py (asyncio + httpx)"
    seconds_run = result["duration_us"] / 1e6
    acked = sum(n for code, n in result["statuses"].items() if code in ("200", "201"))
    result["acked"] = acked
    result["throughput"] = round(acked / seconds_run, 1)
    result["latency_ms"] = {k: round(v / 1000, 3) for k, v in result.pop("latency_us").items()}
    return result


def pgbench(
    server: postgres.Server, database: str, scripts: list[Path], defines: list[str], clients: int, seconds: float,
    work: Path, per_transaction: int = 1, rate: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """pgbench running `scripts` with `clients` for `seconds`: closed loop, or with `rate` an open loop at that many
    transactions per second (Poisson arrivals; each latency then counts from the transaction's scheduled start)."""
    from mandate.db import tools

    exe = tools.find("pgbench", server.major).path
    args, env = server.libpq_args(database)
    logs = work / f"pgbench-{clients}-{per_transaction}-{secrets.token_hex(3)}"
    logs.mkdir()
    threads = 1 if clients < 8 else 2
    base = [str(exe), "-n", "-M", "prepared", "-c", str(clients), "-j", str(threads), "-T", str(max(1, round(seconds)))]
    base += [] if rate is None else ["-R", f"{rate:g}"]
    files = [arg for script in scripts for arg in ("-f", f"{script.name}@1")]
    cmd = [*base, "-l", f"--log-prefix={logs}/tx", *defines, *(a if a == "-f" else str(work / a) for a in files)]
    out = subprocess.run(cmd + args, capture_output=True, text=True, timeout=seconds + 120, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"pgbench failed ({out.returncode}): {out.stderr[-3000:]}")
    processed = int(re.search(r"number of transactions actually processed: (\d+)", out.stdout).group(1))  # type: ignore[union-attr]
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out.stdout).group(1))  # type: ignore[union-attr]
    latencies = []
    for f in logs.iterdir():
        for line in f.read_text().splitlines():
            latencies.append(int(line.split()[2]) / 1000)
    shutil.rmtree(logs, ignore_errors=True)
    lat = summary(latencies)
    shown = [*base, *files, f"-D … ({len(defines) // 2} parameter values)", "<connection options>"]
    return {
        "clients": clients,
        "offered_per_s": rate,
        "transactions": processed,
        "failed": int(failed.group(1)) if failed else 0,
        "decisions_per_transaction": per_transaction,
        "tps": round(tps, 1),
        "throughput": round(tps * per_transaction, 1),
        "latency_ms": {k: round(v, 3) for k, v in lat.items() if k != "n"},
        "command": " ".join(shown),
    }


def verify(url: str, tag: str, acked: int, connections: int) -> dict[str, Any]:
    """Every acknowledged decision stored, with its verdict and two timeline entries (by decision_id range)."""
    low, high = f"{tag}-0000-0000-0000-000000000000", f"{tag}-ffff-ffff-ffff-ffffffffffff"
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            """SELECT count(*),
                      count(*) FILTER (WHERE EXISTS (SELECT 1 FROM mandate.verdict_events v
                                                     WHERE v.decision_id = d.decision_id AND v.stage = d.stage)),
                      count(*) FILTER (WHERE (SELECT count(*) FROM mandate.audit_timeline_entries t
                                              WHERE t.decision_id = d.decision_id AND t.stage = d.stage) = 2)
               FROM mandate.decision_events d WHERE d.decision_id BETWEEN %s AND %s""",
            (low, high),
        ).fetchone()
    assert row is not None
    stored, with_verdict, with_timeline = (int(x) for x in row)
    ok = with_verdict == stored and with_timeline == stored and acked <= stored <= acked + connections
    return {
        "acked": acked,
        "stored": stored,
        "with_verdict": with_verdict,
        "with_two_timeline_entries": with_timeline,
        "ok": ok,
    }


class CpuMeter:
    """CPU milliseconds per decision of the server (all its processes), PostgreSQL (all its processes) and the load
    generator, over one measured run: on 2 shared cores, their sum bounds the throughput (2,000 ms / sum)."""

    def __init__(self, server_pid: int | None, postmaster_pid: int | None) -> None:
        self.pids = {"server": server_pid, "postgres": postmaster_pid}

    def _read(self) -> dict[str, float | None]:
        return {**{k: cpu_seconds(pid) for k, pid in self.pids.items()}, "load": own_children_cpu_seconds()}

    def start(self) -> None:
        self.started = self._read()

    def per_decision_ms(self, decisions: int) -> dict[str, float | None]:
        ended = self._read()
        out: dict[str, float | None] = {}
        for k, v in ended.items():
            if k == "server" and self.pids["server"] is None:
                continue
            before = self.started[k]
            out[k] = (
                round(1000 * (v - before) / decisions, 3)
                if v is not None and before is not None and decisions
                else None
            )
        known = [v for v in out.values() if v is not None]
        out["total"] = round(sum(known), 3) if len(known) == len(out) else None
        return out


def _tag() -> str:
    return secrets.token_hex(4)


def run(server: postgres.Server, quick: bool, work: Path, profile: bool = False) -> dict[str, Any]:
    seconds = 1.0 if quick else 20.0
    levels = (1, 32) if quick else CONCURRENCY
    results: dict[str, Any] = {
        "quick": quick,
        "seconds_per_level": seconds,
        "workers": WORKERS,
        "cores": os.cpu_count(),
        "seeded_decisions": SEEDED,
        "levels": [],
    }
    database, url = prepare_database(server, seeded=SEEDED)
    try:
        bodies_file = work / "bodies.jsonl"
        bodies_file.write_text("".join(json.dumps(b, separators=(",", ":")) + "\n" for b in demo_bodies()))
        scripts, defines, batch = pgbench_scripts(url, work, "bbbbbbbb")
        postmaster = server.postmaster_pid()
        with serve(url, work) as served, Watch(served.pid) as watch:
            results["server_pid_rss_mb_at_start"] = round(watch.samples[-1][1], 1) if watch.samples else None
            wrk(served, 8, 1 if quick else 5, _tag(), bodies_file)  # warm-up: imports, pool, caches, statements
            for c in levels:
                tag = _tag()
                t0 = watch.now()
                meter = CpuMeter(served.pid, postmaster)
                meter.start()
                w = wrk(served, c, seconds, tag, bodies_file)
                w["cpu_ms_per_decision"] = meter.per_decision_ms(w["acked"])
                usage = watch.between(t0, watch.now())
                w["server_cpu_percent"] = round(sum(s[2] for s in usage) / len(usage), 1) if usage else None
                w["server_rss_mb_max"] = round(max(s[1] for s in usage), 1) if usage else None
                w["verification"] = verify(url, tag, w["acked"], c)
                meter = CpuMeter(None, postmaster)
                meter.start()
                p = pgbench(server, database, scripts, defines, c, seconds, work)
                p["cpu_ms_per_decision"] = meter.per_decision_ms(p["transactions"])
                level = {
                    "concurrency": c,
                    "http": w,
                    "pgbench": p,
                    "ratio": round(w["throughput"] / p["throughput"], 3),
                }
                results["levels"].append(level)
                lat = w["latency_ms"]
                print(
                    f"  c={c:>2}: HTTP {w['throughput']:>7.1f}/s p50 {lat['p50']:.2f} ms p99 {lat['p99']:.2f} ms"
                    f" ({w['verification']['stored']} stored, ok={w['verification']['ok']}),"
                    f" pgbench {p['throughput']:>7.1f}/s → ratio {level['ratio']:.2f};"
                    f" CPU ms/decision HTTP {w['cpu_ms_per_decision']}, pgbench {p['cpu_ms_per_decision']}",
                    flush=True,
                )
            if profile:
                results["profile"] = profile_server(served, bodies_file, work, 5 if quick else 20)
            results["rss_samples"] = [(round(t, 1), round(r, 1), round(c, 1)) for t, r, c in watch.samples]
        c = 32
        b = pgbench(server, database, [batch], defines, c, seconds, work, per_transaction=len(demo_bodies()))
        results["group_commit_reference"] = b
        print(f"  pgbench, {b['decisions_per_transaction']} decisions per transaction, c={c}: {b['throughput']}/s")
        with psycopg.connect(url, autocommit=True) as conn:
            results["rows_at_end"] = conn.execute("SELECT count(*) FROM mandate.decision_events").fetchone()[0]  # type: ignore[index]
            results["pgbench_rows"] = conn.execute(
                "SELECT count(*) FROM mandate.decision_events WHERE decision_id BETWEEN %s AND %s",
                ("bbbbbbbb-0000-0000-0000-000000000000", "bbbbbbbb-ffff-ffff-ffff-ffffffffffff"),
            ).fetchone()[0]  # type: ignore[index]
        expected = (
            sum(level["pgbench"]["transactions"] for level in results["levels"])
            + b["transactions"] * b["decisions_per_transaction"]
        )
        results["pgbench_rows_expected"] = expected
    finally:
        server.drop(database)
    return results


def profile_server(served: Served, bodies_file: Path, work: Path, seconds: float) -> dict[str, Any]:
    """py-spy samples the server while wrk loads it at concurrency 32; returns the top functions (own and total)."""
    exe = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))  # venv not on PATH
    if exe is None:
        return {"skipped": "py-spy is not installed (pip install py-spy)"}
    raw = work / "ingest-profile.txt"
    spy = subprocess.Popen(
        [exe, "record", "--pid", str(served.pid), "--subprocesses", "--format", "raw", "--rate", "100",
         "--output", str(raw), "--duration", str(int(seconds))],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.5)
    wrk(served, 32, seconds, _tag(), bodies_file)
    spy.wait(timeout=seconds + 60)
    return summarize_profile(raw)


def profile_only(server: postgres.Server, quick: bool, work: Path) -> dict[str, Any]:
    """Just the py-spy profile of `profile_server`, on a fresh database with the demo governance."""
    database, url = prepare_database(server, seeded=SEEDED)
    try:
        bodies_file = work / "profile-bodies.jsonl"
        bodies_file.write_text("".join(json.dumps(b, separators=(",", ":")) + "\n" for b in demo_bodies()))
        with serve(url, work) as served:
            wrk(served, 8, 1 if quick else 5, _tag(), bodies_file)
            return profile_server(served, bodies_file, work, 5 if quick else 20)
    finally:
        server.drop(database)


def summarize_profile(raw: Path, top: int = 40) -> dict[str, Any]:
    """Own and inclusive time per function (file and name, lines merged), as % of the server's samples; frames on
    (nearly) every stack — the CLI, uvicorn's and asyncio's run loop — are left out of the inclusive list."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";") if f]
        samples += count
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + count
        for f in set(frames):
            total[f] = total.get(f, 0) + count

    def pct(d: dict[str, int], skip_above: float = 101.0) -> list[tuple[str, float]]:
        ranked = [(k, round(100 * v / samples, 1)) for k, v in sorted(d.items(), key=lambda kv: -kv[1])]
        return [(k, p) for k, p in ranked if p < skip_above][:top]

    return {"samples": samples, "own": pct(own), "total": pct(total, skip_above=95.0), "raw": str(raw)}


def variants(server: postgres.Server, quick: bool, work: Path) -> dict[str, Any]:
    """The server variants of bench/variants.py against the unchanged server, rounds interleaved (A B C D A B C D)."""
    from bench.variants import chosen as variant_names

    extra = work / "uvloop-httptools"
    names = variant_names()
    pip_ok = True
    if "uvloop+httptools" in names:
        pip = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(extra), "uvloop", "httptools"],
            capture_output=True,
            text=True,
            check=False,
        )
        pip_ok = pip.returncode == 0
    granian_dir = work / "granian"
    granian = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(granian_dir), "granian"],
        capture_output=True,
        text=True,
        check=False,
    )
    chosen = [v for v in names if (pip_ok or v != "uvloop+httptools") and (granian.returncode == 0 or v != "granian")]
    paths = {"uvloop+httptools": str(extra), "granian": str(granian_dir)}
    seconds = 1.0 if quick else 8.0
    rounds = 1 if quick else 4
    database, url = prepare_database(server, seeded=SEEDED)
    bodies_file = work / "variant-bodies.jsonl"
    bodies_file.write_text("".join(json.dumps(b, separators=(",", ":")) + "\n" for b in demo_bodies()))
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {v: {1: [], 32: []} for v in chosen}
    try:
        for _ in range(rounds):
            for variant in chosen:
                with serve(url, work, variant=variant, pythonpath=paths.get(variant, "")) as served:
                    wrk(served, 8, 1 if quick else 3, _tag(), bodies_file)
                    for c in (1, 32):
                        tag = _tag()
                        meter = CpuMeter(served.pid, server.postmaster_pid())
                        meter.start()
                        w = wrk(served, c, seconds, tag, bodies_file)
                        w["cpu_ms_per_decision"] = meter.per_decision_ms(w["acked"])
                        w["verification"] = verify(url, tag, w["acked"], c)
                        runs[variant][c].append(w)
    finally:
        server.drop(database)
    table = {}
    base = runs["baseline"]
    for variant, by_c in runs.items():
        row = {}
        for c, ws in by_c.items():
            # Each round's variant against the unchanged server of the same round: the machine's load drifts.
            ratios = sorted(w["throughput"] / b["throughput"] for w, b in zip(ws, base[c], strict=True))
            cpu = sorted(
                w["cpu_ms_per_decision"]["server"] / b["cpu_ms_per_decision"]["server"]
                for w, b in zip(ws, base[c], strict=True)
                if w["cpu_ms_per_decision"].get("server") and b["cpu_ms_per_decision"].get("server")
            )
            servers = sorted(w["cpu_ms_per_decision"]["server"] for w in ws if w["cpu_ms_per_decision"].get("server"))
            row[str(c)] = {
                "throughput": round(sorted(w["throughput"] for w in ws)[len(ws) // 2], 1),
                "p50_ms": round(sorted(w["latency_ms"]["p50"] for w in ws)[len(ws) // 2], 3),
                "p99_ms": round(sorted(w["latency_ms"]["p99"] for w in ws)[len(ws) // 2], 3),
                "vs_baseline": round(ratios[len(ratios) // 2], 3),
                "vs_baseline_range": [round(ratios[0], 3), round(ratios[-1], 3)],
                # The server's CPU per decision (all its processes), and against the same round's unchanged server:
                # steadier than the rates on a shared machine.
                "server_cpu_ms": servers[len(servers) // 2] if servers else None,
                "server_cpu_vs_baseline": round(cpu[len(cpu) // 2], 3) if cpu else None,
                "ok": all(w["verification"]["ok"] for w in ws),
            }
        table[variant] = row
    for variant, row in table.items():
        print(
            f"  {variant:<34} c=1 {row['1']['throughput']:>6.0f}/s p50 {row['1']['p50_ms']:.2f} ms;"
            f" c=32 {row['32']['throughput']:>6.0f}/s (× {row['32']['vs_baseline']:.2f}) p99 {row['32']['p99_ms']:.1f} ms,"
            f" server CPU {row['32']['server_cpu_ms']} ms per decision (× {row['32']['server_cpu_vs_baseline']})",
            flush=True,
        )
    from bench.variants import has_fast_loop, shipped_middleware

    shipped = shipped_middleware()
    swapped = "@app.middleware('http')" if shipped == "pure ASGI" else "pure ASGI"
    return {
        "seconds": seconds,
        "rounds": rounds,
        "pip": pip_ok,
        "granian_installed": granian.returncode == 0,
        "shipped_middleware": shipped,
        "swap_middleware": f"{shipped} → {swapped}",
        "shipped_loop": "uvloop + httptools" if has_fast_loop() else "asyncio + h11",
        "workers": WORKERS,
        "variants": table,
    }
