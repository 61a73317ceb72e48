"""Reads on the migrated database: the decisions list filtered by domain (+ verdict, + time range), paginated deep
with the cursor, and a decision's detail with its timeline — over HTTP from `mandate serve`, one request at a time,
timed by the client; with the EXPLAIN (ANALYZE, BUFFERS) plan of the SQL behind each.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

from bench.served import serve
from bench.stats import summary

PAGE = 50


class _Recorder:
    """Stands in for the connection in `mandate.db.decisions`: keeps the query instead of sending it."""

    def __init__(self) -> None:
        self.query: Any = None
        self.params: Any = None

    async def execute(self, query: Any, params: Any = None) -> _Recorder:
        self.query, self.params = query, params
        return self

    async def fetchall(self) -> list[Any]:
        return []


def _captured(call: Callable[[Any], Any]) -> tuple[Any, Any]:
    recorder = _Recorder()
    asyncio.run(call(recorder))
    return recorder.query, recorder.params


def explain(url: str, call: Callable[[Any], Any]) -> str:
    query, params = _captured(call)
    with psycopg.connect(url, autocommit=True) as conn:
        statement = query if isinstance(query, sql.Composable) else sql.SQL(query)  # type: ignore[arg-type]
        rows = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + statement, params).fetchall()
    return "\n".join(r[0] for r in rows)


def targets(url: str, count: int, seed: int = 5) -> dict[str, Any]:
    rng = random.Random(seed)
    with psycopg.connect(url, autocommit=True) as conn:
        domains = conn.execute("SELECT organization_id::text, domain FROM mandate.domains ORDER BY 1, 2").fetchall()
        lo, hi = conn.execute('SELECT min("timestamp"), max("timestamp") FROM mandate.decision_events').fetchone()  # type: ignore[misc]
        sampled = conn.execute(
            "SELECT decision_id::text, organization_id::text, domain, scope->>'agent' FROM mandate.decision_events"
            " TABLESAMPLE SYSTEM (1) WHERE scope->>'agent' IS NOT NULL LIMIT %s",
            [count * 5],
        ).fetchall()
    rng.shuffle(sampled)
    ids = [r[0] for r in sampled]
    # (organization, domain, agent) of sampled decisions: an agent is chosen as often as it decides.
    agents = [(r[1], r[2], r[3]) for r in sampled]
    span = (hi - lo).total_seconds()
    windows = []
    for _ in range(count):
        start = lo + timedelta(seconds=rng.uniform(0, max(0.0, span - 86400)))
        windows.append((start, start + timedelta(days=1)))
    return {"domains": domains, "ids": ids[:count], "agents": agents[:count], "windows": windows, "span": (lo, hi)}


QUERIES = (
    "list by domain",
    "list by domain + verdict",
    "list by domain + verdict + time range",
    "list by domain + agent",
    "list by domain + rare agent",
    "deep pagination (per page)",
    "decision detail",
    "decision timeline",
    "detail + timeline",
)


def _blocks(url: str, settle_s: float) -> tuple[int, int]:
    """(read, hit) shared blocks of the database so far, by every backend (autovacuum's workers too): read = not in
    PostgreSQL's buffers (from the OS's page cache or the disk), hit = found in them. Waits `settle_s` first: an
    idle backend reports its counts up to 10 s late (PostgreSQL 15+)."""
    time.sleep(settle_s)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT blks_read, blks_hit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _one_pass(
    get: Callable[..., tuple[float, dict[str, Any]]], t: dict[str, Any], count: int, pages: int, seed: int
) -> tuple[dict[str, list[float]], list[tuple[int, float]], dict[str, Any], int]:
    """Every request of the benchmark once, in an order fixed by `seed` (so a second pass repeats the first)."""
    rng = random.Random(seed)
    verdicts = ("ALLOW", "PAUSE", "BLOCK", "OBSERVE")
    timings: dict[str, list[float]] = {name: [] for name in QUERIES}
    depth: list[tuple[int, float]] = []
    requests = 0
    for i in range(count):
        org, dom = rng.choice(t["domains"])
        base = {"organization_id": org, "domain": dom, "limit": PAGE}
        verdict = rng.choice(verdicts)
        since, until = t["windows"][i]
        timings["list by domain"].append(get("/api/decisions", base)[0])
        timings["list by domain + verdict"].append(get("/api/decisions", {**base, "verdict": verdict})[0])
        window = {**base, "verdict": verdict, "since": since.isoformat(), "until": until.isoformat()}
        timings["list by domain + verdict + time range"].append(get("/api/decisions", window)[0])
        a_org, a_dom, agent = t["agents"][i % len(t["agents"])]
        by_agent = {"organization_id": a_org, "domain": a_dom, "agent": agent, "limit": PAGE}
        timings["list by domain + agent"].append(get("/api/decisions", by_agent)[0])
        if i % RARE_EVERY == 0:
            timings["list by domain + rare agent"].append(get("/api/decisions", {**t["rare"], "limit": PAGE})[0])
            requests += 1
        decision_id = t["ids"][i % len(t["ids"])]
        a = get(f"/api/decisions/{decision_id}")[0]
        b = get(f"/api/decisions/{decision_id}/timeline")[0]
        timings["decision detail"].append(a)
        timings["decision timeline"].append(b)
        timings["detail + timeline"].append(a + b)
        requests += 6
    deep_cursor: dict[str, Any] = {}
    for org, dom in t["domains"][:3]:
        params: dict[str, Any] = {"organization_id": org, "domain": dom, "limit": PAGE}
        for page in range(pages):
            elapsed, body = get("/api/decisions", params)
            requests += 1
            timings["deep pagination (per page)"].append(elapsed)
            depth.append((page * PAGE, elapsed))
            if not body["next_cursor"]:
                break
            params = {**params, "cursor": body["next_cursor"]}
        deep_cursor = params
    return timings, depth, deep_cursor, requests


def _latency(timings: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {name: {k: round(v, 3) for k, v in summary(s).items()} for name, s in timings.items()}


def _vacuum_state(url: str) -> dict[str, Any]:
    """What autovacuum is doing and has done to the event tables (it starts on its own after the migration's rewrite:
    the runbook ANALYZEs but does not VACUUM)."""
    with psycopg.connect(url, autocommit=True) as conn:
        running = conn.execute(
            "SELECT relid::regclass::text, phase, heap_blks_scanned, heap_blks_total FROM pg_stat_progress_vacuum"
            " WHERE datname = current_database()"
        ).fetchall()
        done = conn.execute(
            "SELECT relname, autovacuum_count, vacuum_count, n_dead_tup FROM pg_stat_user_tables"
            " WHERE schemaname = 'mandate' AND relname IN ('decision_events', 'verdict_events', 'audit_timeline_entries')"
            " ORDER BY relname"
        ).fetchall()
    return {
        "running": [{"table": r[0], "phase": r[1], "scanned": r[2], "total": r[3]} for r in running],
        "tables": {r[0]: {"autovacuums": r[1], "vacuums": r[2], "dead_rows": r[3]} for r in done},
    }


# A rare agent: RARE_DECISIONS decisions of one domain, the oldest ones, copied under a new agent name before the
# first pass (the generated agents each decide 1 in 25 of their domain's decisions, so a page of one of them is
# found near the top of the domain's history; an agent that rarely decides is the worst case of a list by agent:
# without an index on the agent, its first page reads the whole domain). Requested every RARE_EVERY-th round.
RARE_AGENT = "bench-rare-agent"
RARE_DECISIONS = 20
RARE_EVERY = 15


def add_rare_agent(url: str, t: dict[str, Any]) -> dict[str, str]:
    org, dom = t["domains"][0]
    with psycopg.connect(url) as conn:  # one transaction
        conn.execute(
            "CREATE TEMPORARY TABLE bench_rare ON COMMIT DROP AS SELECT * FROM mandate.decision_events"
            ' WHERE organization_id = %s AND domain = %s ORDER BY "timestamp", decision_id, stage LIMIT %s',
            [org, dom, RARE_DECISIONS],
        )
        conn.execute(
            "UPDATE bench_rare SET decision_id = gen_random_uuid(), scope = jsonb_set(scope, '{agent}', to_jsonb(%s::text))",
            [RARE_AGENT],
        )
        conn.execute("INSERT INTO mandate.decision_events SELECT * FROM bench_rare")
    return {"organization_id": org, "domain": dom, "agent": RARE_AGENT}


# The index a list by domain + agent calls for (the list's own order after the agent), as migration 015 builds it.
# After the settled pass, an A/B on the same database: created when the database does not have it (migrated by
# code before 015), dropped when it does.
AGENT_INDEX = "idx_decision_events_agent"
_AGENT_INDEX_SQL = (
    f"CREATE INDEX {AGENT_INDEX} ON mandate.decision_events"
    " (organization_id, domain, (scope->>'agent'), \"timestamp\" DESC, decision_id DESC, stage DESC)"
)


def run(database_url: str, quick: bool, work: Path) -> dict[str, Any]:
    """The requests in the same order, pass after pass: right after the migration (judged as what an operator meets
    first); repeated at once (the pages the first read would be cached); after a VACUUM (ANALYZE) of the database
    (settled: visibility map set, autovacuum's first pass over the rewritten tables done), judged as the steady
    state; and once more after creating the agent index (or dropping it, when the database has it). The blocks the
    database read in each pass tell reading pages apart from other work (autovacuum's among it)."""
    count = 20 if quick else 300
    pages = 5 if quick else 200
    t = targets(database_url, count)
    t["rare"] = add_rare_agent(database_url, t)
    passes: dict[str, dict[str, Any]] = {}
    extra: dict[str, Any] = {}
    with serve(database_url, work) as served, httpx.Client(base_url=served.base_url, timeout=30) as client:

        def get(path: str, params: dict[str, Any] | None = None) -> tuple[float, dict[str, Any]]:
            t0 = time.perf_counter()
            r = client.get(path, params=params)
            elapsed = (time.perf_counter() - t0) * 1000
            r.raise_for_status()
            return elapsed, r.json()

        for _ in range(3):  # warm-up: connections, statement preparation
            org, dom = t["domains"][0]
            get("/api/decisions", {"organization_id": org, "domain": dom, "limit": PAGE})
        settle = 1.0 if quick else 11.0

        def one(name: str) -> None:
            read0, hit0 = _blocks(database_url, settle)
            timings, depth, deep_cursor, requests = _one_pass(get, t, count, pages, seed=11)
            read1, hit1 = _blocks(database_url, settle)
            passes[name] = {
                "timings": timings,
                "depth": depth,
                "deep_cursor": deep_cursor,
                "requests": requests,
                "blocks_read_per_request": round((read1 - read0) / requests, 2),
                "blocks_hit_per_request": round((hit1 - hit0) / requests, 2),
            }
            print(f"  pass '{name}' done", flush=True)

        one("first")
        one("repeat")
        extra["vacuum_before_settling"] = _vacuum_state(database_url)
        with psycopg.connect(database_url, autocommit=True) as conn:
            t0 = time.perf_counter()
            conn.execute("VACUUM (ANALYZE)")
            extra["vacuum_analyze_s"] = round(time.perf_counter() - t0, 1)
        print(f"  VACUUM (ANALYZE) {extra['vacuum_analyze_s']} s", flush=True)
        one("settled")
        plans = _plans(database_url, t, passes["settled"]["deep_cursor"], pages)
        extra["agent_index"] = _toggle_agent_index(database_url)
        way = extra["agent_index"]["way"]
        print(
            f"  {AGENT_INDEX} {'created' if way == 'with' else 'dropped'} in {extra['agent_index']['seconds']} s",
            flush=True,
        )
        one("agent index")
        plans[f"list by domain + agent ({way} {AGENT_INDEX})"] = _agent_plan(database_url, t)
        plans[f"list by domain + rare agent ({way} {AGENT_INDEX})"] = _agent_plan(database_url, t, rare=True)
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT count(*) FROM mandate.decision_events").fetchone()[0]  # type: ignore[index]

    def block(p: dict[str, Any]) -> dict[str, float]:
        return {"read": p["blocks_read_per_request"], "hit": p["blocks_hit_per_request"]}

    first = passes["first"]
    results: dict[str, Any] = {
        "quick": quick,
        "decisions": int(rows),
        "requests_per_query": count,
        "pages_deep": pages,
        "page_size": PAGE,
        "latency_ms": _latency(first["timings"]),
        "depth_ms": [(d, round(ms, 3)) for d, ms in first["depth"]],
        "blocks_per_request": block(first),
        "repeat": {"latency_ms": _latency(passes["repeat"]["timings"]), "blocks_per_request": block(passes["repeat"])},
        "settled": {
            "latency_ms": _latency(passes["settled"]["timings"]),
            "blocks_per_request": block(passes["settled"]),
            "vacuum_analyze_s": extra["vacuum_analyze_s"],
            "autovacuum_before": extra["vacuum_before_settling"],
        },
        "plans": plans,
    }
    results["agent_index"] = {
        "index": AGENT_INDEX,
        **extra["agent_index"],
        "latency_ms": _latency(passes["agent index"]["timings"]),
        "blocks_per_request": block(passes["agent index"]),
    }
    for name, s in results["latency_ms"].items():
        print(
            f"  {name:<40} p99 first {s['p99']:.2f} ms, repeated {results['repeat']['latency_ms'][name]['p99']:.2f},"
            f" settled {results['settled']['latency_ms'][name]['p99']:.2f},"
            f" {results['agent_index']['way']} the agent index {results['agent_index']['latency_ms'][name]['p99']:.2f}",
            flush=True,
        )
    return results


def _plans(url: str, t: dict[str, Any], deep_cursor: dict[str, Any], pages: int) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the SQL behind each request, with representative parameters."""
    from uuid import UUID

    from mandate.db import decisions as q

    org, dom = t["domains"][0]
    since, until = t["windows"][0]
    f = q.DecisionFilter(organization_id=UUID(org), domain=dom)
    fv = q.DecisionFilter(organization_id=UUID(org), domain=dom, verdict="BLOCK")
    ft = q.DecisionFilter(organization_id=UUID(org), domain=dom, verdict="BLOCK", since=since, until=until)
    cursor = q.Cursor.decode(deep_cursor["cursor"]) if deep_cursor.get("cursor") else None
    fd = q.DecisionFilter(organization_id=UUID(deep_cursor["organization_id"]), domain=deep_cursor["domain"])
    decision = UUID(t["ids"][0])
    return {
        "list by domain": explain(url, lambda c: q.list_decisions(c, f, limit=PAGE + 1)),
        "list by domain + verdict": explain(url, lambda c: q.list_decisions(c, fv, limit=PAGE + 1)),
        "list by domain + verdict + time range": explain(url, lambda c: q.list_decisions(c, ft, limit=PAGE + 1)),
        "list by domain + agent": _agent_plan(url, t),
        "list by domain + rare agent": _agent_plan(url, t, rare=True),
        f"deep pagination (page {pages})": explain(
            url, lambda c: q.list_decisions(c, fd, limit=PAGE + 1, cursor=cursor)
        ),
        "decision detail": explain(url, lambda c: q.get_decision(c, decision)),
        "decision timeline": explain(url, lambda c: q.get_timeline(c, decision)),
    }


def _toggle_agent_index(url: str) -> dict[str, Any]:
    """Create AGENT_INDEX (with an ANALYZE) when the database lacks it, else drop it: {way, seconds, bytes}."""
    name = f"mandate.{AGENT_INDEX}"
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_relation_size(to_regclass(%s))", [name]).fetchone()
        size = row[0] if row else None
        t0 = time.perf_counter()
        if size is None:
            conn.execute(_AGENT_INDEX_SQL)
            conn.execute("ANALYZE mandate.decision_events")
            row = conn.execute("SELECT pg_relation_size(%s::regclass)", [name]).fetchone()
            size = row[0] if row else None
            way = "with"
        else:
            conn.execute(f"DROP INDEX {name}")
            way = "without"
        return {"way": way, "seconds": round(time.perf_counter() - t0, 1), "bytes": size}


def _agent_plan(url: str, t: dict[str, Any], rare: bool = False) -> str:
    from uuid import UUID

    from mandate.db import decisions as q

    org, dom, agent = (
        (t["rare"]["organization_id"], t["rare"]["domain"], t["rare"]["agent"]) if rare else t["agents"][0]
    )
    fa = q.DecisionFilter(organization_id=UUID(org), domain=dom, agent=agent)
    return explain(url, lambda c: q.list_decisions(c, fa, limit=PAGE + 1))
