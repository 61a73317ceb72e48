"""Approvals under load, in one run: a resume (evaluated again, checked, its approval consumed) against a plain
decision at concurrency 32, then 500 agents long-polling their own approval requests.

    python -m bench.approvals                      # 5 rounds × 1,000 requests per kind; 500 polls held 20 s
    python -m bench.approvals --quick              # tiny (the smoke test)

`mandate serve --workers <cores>` (bench/served.py, authentication off, as the ingestion benchmark runs it) on a
dedicated PostgreSQL with the demo governance. The action is tests/web/test_approvals.py's `drop()`: a critical
drop of `production.sessions` with a backup, PAUSE by policy-pause-critical-db-ops-v1 with the requirements
dba-approval and compliance-review (docs/approvals.md).

1. **Preparation**: through the API, 32 at a time, each approval the agent will resume with is created (the PAUSE)
   and approved (one POST per requirement; with authentication off approvals carry no token, so the one-approver-
   per-requirement rule does not apply).
2. **Resume vs plain decision**: rounds alternate (plain, resume, then resume, plain, …), each a fixed number of
   requests from 32 concurrent keep-alive connections of a load generator in its own process (asyncio + httpx, like
   bench/load.py). A plain decision is the same action without `approval_id` (a PAUSE, which writes its approval
   request); a resume is the same action with a fresh decision_id and its own approved `approval_id` (ALLOW,
   consuming it). Latencies of all rounds are pooled per kind; the target (issue 17) is p99(resume) ≤ 2 × p99(plain).
   Every answer must be 201 with the expected verdict; afterwards SQL counts one consumption per resume and one
   approval request per plain decision. The server's access log gives the same requests' time inside the app
   (without the wait in the socket and the event loop before it, which dominates the tail on a saturated machine).
3. **Long-poll**: `GET /api/approvals/{id}?wait=30` on 500 pending requests (those the plain decisions created), one
   connection each. The server's RSS (all its processes, from /proc via psutil) is sampled before the polls open and
   while they are held (`--hold` seconds); the target is < 50 MB extra. Half-way, some requests are approved (both
   requirements): the latency from the completing approval to its poll's answer is measured. The others answer when
   their wait ends (200, still pending). Every poll must answer 200. The approvals are made by `--approvers`
   approvers acting at once, each approving one request after the other (default: one).

Results: docs/benchmarks.md ("Approvals: resume and long-poll").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from bench import postgres
from bench.ingest import prepare_database
from bench.served import WORKERS, Served, Watch, cpu_seconds, serve
from bench.stats import percentile

TARGET_P99_RATIO = 2.0
TARGET_EXTRA_MB = 50.0
ORGANIZATION_ID = "550e8400-e29b-41d4-a716-446655440000"
REQUIREMENTS = ("dba-approval", "compliance-review")


def action(approval_id: str | None = None) -> dict[str, Any]:
    """The paused action (tests/web/test_approvals.py `drop()`), with a new decision_id; with `approval_id`, its
    resume."""
    body: dict[str, Any] = {
        "decision_id": str(uuid.uuid4()),
        "organization_id": ORGANIZATION_ID,
        "domain": "config-management",
        "intent": "database.drop_table",
        "stage": "pre_commit",
        "actor": "pause-escalation-agent",
        "target": "production.sessions",
        "context": {"risk_level": "critical", "reversible": False, "backup_first": True},
        "scope": {"service": "db-admin-tool", "agent": "pause-escalation-agent", "environment": "production"},
    }
    if approval_id is not None:
        body["approval_id"] = approval_id
    return body


# -- preparation -------------------------------------------------------------------------------------------------


async def _prepare(base_url: str, count: int, connections: int) -> tuple[list[str], list[str]]:
    """`count` approved requests (PAUSE, then each requirement approved), `connections` pipelines at a time; and the
    transport errors met on the way (a connection closed without an answer: that request is left unused and
    another prepared in its place; more than 1 % of `count` is a failure). Any answer but 201 is a failure."""
    approved: list[str] = []
    failures: list[str] = []
    transport_errors: list[str] = []
    started = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:

        async def one() -> str | None:
            r = await client.post("/api/decisions", json=action())
            if r.status_code != 201 or r.json()["verdict"] != "PAUSE":
                failures.append(f"decision: {r.status_code} {r.text[:200]}")
                return None
            approval_id: str = r.json()["approval_request"]["approval_id"]
            for requirement in REQUIREMENTS:
                a = await client.post(f"/api/approvals/{approval_id}/approve", json={"requirement": requirement})
                if a.status_code != 201:
                    failures.append(f"approve {requirement}: {a.status_code} {a.text[:200]}")
                    return None
            return approval_id

        async def pipeline() -> None:
            nonlocal started
            while started < count and not failures and len(transport_errors) <= count // 100:
                started += 1
                try:
                    approval_id = await one()
                except httpx.TransportError as exc:
                    transport_errors.append(f"{type(exc).__name__} at {len(approved)} prepared")
                    started -= 1  # prepared again by whichever pipeline is free
                    continue
                if approval_id is not None:
                    approved.append(approval_id)

        await asyncio.gather(*(pipeline() for _ in range(connections)))
    if failures:
        raise RuntimeError(f"preparing {count} approvals failed, the first failure: {failures[0]}")
    if len(approved) < count:
        raise RuntimeError(f"preparing {count} approvals: {len(transport_errors)} transport errors: {transport_errors}")
    return approved, transport_errors


# -- the load generator (its own process) ------------------------------------------------------------------------


async def _fire(url: str, connections: int, bodies: list[bytes]) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    verdicts: dict[str, int] = {}
    errors: dict[str, int] = {}
    remaining = iter(bodies)  # shared: every body is sent once, by whichever connection is free
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(timeout=30, headers=headers, limits=limits) as client:

        async def connection() -> None:
            for body in remaining:
                t0 = time.perf_counter()
                try:
                    r = await client.post(url, content=body)
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                latencies.append((time.perf_counter() - t0) * 1000)
                statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
                verdict = r.json().get("verdict", "-") if r.status_code == 201 else "-"
                verdicts[verdict] = verdicts.get(verdict, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(connections)))
        duration = time.perf_counter() - started
    return {
        "duration_s": duration,
        "latencies_ms": latencies,
        "statuses": statuses,
        "verdicts": verdicts,
        "errors": errors,
    }


def generator() -> None:
    """`URL CONNECTIONS BODIES_FILE`: POST each line of the file once; prints `RESULT {json}`."""
    url, connections, bodies_file = sys.argv[1:4]
    bodies = [line.encode() for line in Path(bodies_file).read_text().splitlines() if line]
    result = asyncio.run(_fire(url, int(connections), bodies))
    print("RESULT " + json.dumps(result), flush=True)


def fire(served: Served, connections: int, bodies: list[dict[str, Any]], work: Path) -> dict[str, Any]:
    path = work / f"bodies-{uuid.uuid4().hex[:8]}.jsonl"
    path.write_text("".join(json.dumps(b, separators=(",", ":")) + "\n" for b in bodies))
    root = str(Path(__file__).resolve().parent.parent)
    script = f"import sys; sys.path.insert(0, {root!r}); from bench.approvals import generator; generator()"
    cmd = [sys.executable, "-c", script, served.base_url + "/api/decisions", str(connections), str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    path.unlink()
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line[len("RESULT ") :])
    return result


def _latency(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "min": round(ordered[0], 2),
        "p50": round(percentile(ordered, 50), 2),
        "p90": round(percentile(ordered, 90), 2),
        "p99": round(percentile(ordered, 99), 2),
        "max": round(ordered[-1], 2),
    }


def _in_app_ms(log: Path, offset: int, expected: int) -> tuple[list[float], int]:
    """The durations the server's access log recorded for POST /api/decisions after byte `offset` — the time inside
    the app, without the wait in the socket and the event loop before it — once `expected` are there (≤ 5 s)."""
    deadline = time.monotonic() + 5
    while True:
        with log.open("rb") as f:
            f.seek(offset)
            text = f.read()
        lines = [json.loads(line) for line in text.splitlines() if line.startswith(b'{"') and b"mandate.access" in line]
        found = [x["duration_ms"] for x in lines if x.get("path") == "/api/decisions" and x.get("method") == "POST"]
        if len(found) >= expected or time.monotonic() > deadline:
            return found, offset + len(text)
        time.sleep(0.1)


def resume_vs_plain(
    served: Served, url: str, approved: list[str], rounds: int, per_round: int, connections: int, work: Path
) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "resume": []}
    sent: dict[str, list[str]] = {"plain": [], "resume": []}
    expected = {"plain": "PAUSE", "resume": "ALLOW"}
    in_app: dict[str, list[float]] = {"plain": [], "resume": []}
    unused = iter(approved)
    offset = served.log.stat().st_size
    for i in range(rounds):
        for kind in ("plain", "resume") if i % 2 == 0 else ("resume", "plain"):
            bodies = [action() if kind == "plain" else action(next(unused)) for _ in range(per_round)]
            before = cpu_seconds(served.pid)
            r = fire(served, connections, bodies, work)
            after = cpu_seconds(served.pid)
            logged, offset = _in_app_ms(served.log, offset, per_round)
            in_app[kind] += logged
            r["server_cpu_ms"] = (
                round(1000 * (after - before) / per_round, 3) if before is not None and after is not None else None
            )
            r["throughput"] = round(len(r["latencies_ms"]) / r["duration_s"], 1)
            r["ok"] = r["statuses"] == {"201": per_round} and r["verdicts"] == {expected[kind]: per_round}
            sent[kind] += [b["decision_id"] for b in bodies]
            runs[kind].append(r)
            lat = _latency(r["latencies_ms"])
            print(
                f"  round {i + 1} {kind:>6}: {r['throughput']:>6.1f}/s p50 {lat['p50']} ms p99 {lat['p99']} ms, "
                f"server CPU {r['server_cpu_ms']} ms/request, {r['verdicts']}",
                flush=True,
            )
    with psycopg.connect(url, autocommit=True) as conn:
        consumed = conn.execute(
            """SELECT count(*) FROM mandate.approval_consumptions c
                 JOIN mandate.verdict_events v ON v.verdict_id = c.verdict_id AND v.verdict = 'ALLOW'
                WHERE c.decision_id = ANY(%s::uuid[])""",
            (sent["resume"],),
        ).fetchone()
        requested = conn.execute(
            "SELECT count(*) FROM mandate.approval_requests WHERE decision_id = ANY(%s::uuid[])", (sent["plain"],)
        ).fetchone()
    assert consumed is not None and requested is not None
    out: dict[str, Any] = {"rounds": rounds, "per_round": per_round, "connections": connections}
    for kind, rs in runs.items():
        out[kind] = {
            "latency_ms": _latency([x for r in rs for x in r["latencies_ms"]]),
            "p99_per_round": [_latency(r["latencies_ms"])["p99"] for r in rs],
            "throughput": [r["throughput"] for r in rs],
            "server_cpu_ms": round(statistics.median(r["server_cpu_ms"] for r in rs), 3),
            "in_app_ms": _latency(in_app[kind]),
            "verdicts": {v: sum(r["verdicts"].get(v, 0) for r in rs) for v in {v for r in rs for v in r["verdicts"]}},
            "ok": all(r["ok"] for r in rs),
        }
    out["stored"] = {
        "resumes_consumed_with_allow": int(consumed[0]),
        "resumes_sent": len(sent["resume"]),
        "plain_with_approval_request": int(requested[0]),
        "plain_sent": len(sent["plain"]),
    }
    out["ok"] = (
        all(out[kind]["in_app_ms"]["n"] == rounds * per_round for kind in ("plain", "resume"))
        and out["plain"]["ok"]
        and out["resume"]["ok"]
        and int(consumed[0]) == len(sent["resume"])
        and int(requested[0]) == len(sent["plain"])
    )
    out["p99_ratio"] = round(out["resume"]["latency_ms"]["p99"] / out["plain"]["latency_ms"]["p99"], 3)
    out["p50_ratio"] = round(out["resume"]["latency_ms"]["p50"] / out["plain"]["latency_ms"]["p50"], 3)
    out["p99_ratio_per_round"] = [
        round(r / p, 3) for r, p in zip(out["resume"]["p99_per_round"], out["plain"]["p99_per_round"], strict=True)
    ]
    out["in_app_p99_ratio"] = round(out["resume"]["in_app_ms"]["p99"] / out["plain"]["in_app_ms"]["p99"], 3)
    out["server_cpu_ratio"] = round(out["resume"]["server_cpu_ms"] / out["plain"]["server_cpu_ms"], 3)
    out["met"] = out["p99_ratio"] <= TARGET_P99_RATIO
    return out


# -- long-poll ---------------------------------------------------------------------------------------------------


def _pending(url: str, count: int) -> list[str]:
    """`count` requests that are pending: no resolution, not consumed, not expired (oldest first)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            """SELECT a.approval_id::text FROM mandate.approval_requests a
                WHERE NOT EXISTS (SELECT 1 FROM mandate.approval_resolutions r WHERE r.approval_id = a.approval_id)
                  AND NOT EXISTS (SELECT 1 FROM mandate.approval_consumptions c WHERE c.approval_id = a.approval_id)
                  AND (a.expires_at IS NULL OR a.expires_at > now() + interval '10 minutes')
                ORDER BY a.created_at LIMIT %s""",
            (count,),
        ).fetchall()
    return [r[0] for r in rows]


def _established(port: int) -> int:
    """TCP connections to the server's port now established (this machine's table, from /proc/net/tcp)."""
    return sum(
        1 for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port and c.status == "ESTABLISHED"
    )


async def _hold(
    served: Served, ids: list[str], wake: int, approvers: int, wait_s: float, hold_s: float, watch: Watch
) -> dict[str, Any]:
    polls: dict[str, dict[str, Any]] = {}
    limits = httpx.Limits(max_connections=len(ids), max_keepalive_connections=len(ids))
    async with (
        httpx.AsyncClient(base_url=served.base_url, timeout=wait_s + 30, limits=limits) as pollers,
        httpx.AsyncClient(base_url=served.base_url, timeout=30) as approver,
    ):

        async def poll(approval_id: str) -> None:
            record: dict[str, Any] = {"sent": watch.now()}
            polls[approval_id] = record
            try:
                r = await pollers.get(f"/api/approvals/{approval_id}", params={"wait": wait_s})
            except httpx.HTTPError as exc:
                record.update(answered=watch.now(), status=type(exc).__name__, state=None)
                return
            record.update(answered=watch.now(), status=r.status_code, state=r.json().get("state"))

        tasks = []
        opened_at = watch.now()
        for i, approval_id in enumerate(ids):  # 50 at a time: the listen backlog is 128
            tasks.append(asyncio.create_task(poll(approval_id)))
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        deadline = time.monotonic() + 10
        established = 0
        while time.monotonic() < deadline:
            established = await asyncio.to_thread(_established, served.port)
            if established >= len(ids):
                break
            await asyncio.sleep(0.2)
        held_from = watch.now()
        await asyncio.sleep(hold_s / 2)
        early = [i for i in ids if "answered" in polls[i]]

        async def approve(approval_id: str) -> dict[str, Any]:
            times: dict[str, Any] = {}
            for requirement in REQUIREMENTS:
                times["sent"] = watch.now()  # the completing approval's (the last requirement)
                a = await approver.post(f"/api/approvals/{approval_id}/approve", json={"requirement": requirement})
                times["status"] = a.status_code
                times["done"] = watch.now()
            return times

        approvals: dict[str, dict[str, Any]] = {}

        async def approver_lane(lane: list[str]) -> None:  # one approver: one request after the other
            for approval_id in lane:
                approvals[approval_id] = await approve(approval_id)

        chosen = ids[:wake]
        await asyncio.gather(*(approver_lane(chosen[k::approvers]) for k in range(approvers)))
        await asyncio.sleep(max(0.0, held_from + hold_s - watch.now()))
        held_to = watch.now()
        still_waiting = sum(1 for i in ids if "answered" not in polls[i])
        await asyncio.gather(*tasks)
    woken = [
        {
            "from_sent_ms": 1000 * (polls[i]["answered"] - a["sent"]),
            "from_done_ms": 1000 * (polls[i]["answered"] - a["done"]),
            "state": polls[i]["state"],
        }
        for i, a in approvals.items()
    ]
    others = [polls[i] for i in ids if i not in approvals]
    return {
        "polls": len(ids),
        "ramp_s": round(held_from - opened_at, 2),
        "established_at_hold": established,
        "answered_before_the_approvals": len(early),
        "still_waiting_at_hold_end": still_waiting,
        "statuses": {
            str(s): sum(1 for p in polls.values() if p["status"] == s) for s in {p["status"] for p in polls.values()}
        },
        "approved": len(approvals),
        "approvers": approvers,
        "approve_statuses_ok": all(a["status"] == 201 for a in approvals.values()),
        "woken_states": sorted({w["state"] for w in woken}),
        "wake_ms_from_approve_sent": _latency([w["from_sent_ms"] for w in woken]) if woken else None,
        "wake_ms_from_approve_answered": _latency([w["from_done_ms"] for w in woken]) if woken else None,
        "others_states": sorted({str(p["state"]) for p in others}),
        "others_answered_after_s": _latency([p["answered"] - p["sent"] for p in others]) if others else None,
        "window": (held_from, held_to),
    }


def long_poll(
    served: Served, url: str, count: int, wake: int, approvers: int, wait_s: float, hold_s: float
) -> dict[str, Any]:
    ids = _pending(url, count)
    if len(ids) < count:
        raise RuntimeError(f"only {len(ids)} pending approval requests, {count} needed (more plain decisions)")
    for approval_id in ids[-5:]:  # the route warm in every worker before the baseline
        httpx.get(f"{served.base_url}/api/approvals/{approval_id}", timeout=30).raise_for_status()
    with Watch(served.pid, interval=0.25) as watch:
        time.sleep(min(3.0, hold_s))  # the baseline
        before = [s[1] for s in watch.samples]
        result = asyncio.run(_hold(served, ids, wake, approvers, wait_s, hold_s, watch))
        start, end = result.pop("window")
        during = [s[1] for s in watch.between(start, end)]
        after = [s[1] for s in watch.samples if s[0] > end]
    baseline = statistics.median(before)
    result["rss_mb"] = {
        "before": round(baseline, 1),
        "during_max": round(max(during), 1),
        "during_median": round(statistics.median(during), 1),
        "after_all_answered": round(after[-1], 1) if after else None,
        "samples_during": len(during),
    }
    result["extra_mb"] = round(max(during) - baseline, 1)
    result["ok"] = (
        result["statuses"] == {"200": count}
        and result["approve_statuses_ok"]
        and result["woken_states"] == ["approved"]
        and result["others_states"] == ["pending"]
        and result["answered_before_the_approvals"] == 0
        and result["established_at_hold"] >= count
    )
    result["met"] = result["extra_mb"] < TARGET_EXTRA_MB
    return result


# -- the run -----------------------------------------------------------------------------------------------------


def measure(
    served: Served, url: str, work: Path, rounds: int, per_round: int, connections: int, polls: int, wake: int,
    approvers: int, wait_s: float, hold_s: float,
) -> dict[str, Any]:  # fmt: skip
    results: dict[str, Any] = {"workers": WORKERS}
    warm = min(per_round, 200)
    t0 = time.monotonic()
    approved, errors = asyncio.run(_prepare(served.base_url, warm + rounds * per_round, connections))
    results["preparation"] = {
        "approved": len(approved),
        "seconds": round(time.monotonic() - t0, 1),
        "transport_errors": errors,
    }
    print(f"  prepared {len(approved)} approved requests in {results['preparation']['seconds']} s", flush=True)
    # Warm-up of both paths (imports, caches, prepared statements), from the first approvals.
    fire(served, connections, [action() for _ in range(warm)], work)
    fire(served, connections, [action(a) for a in approved[:warm]], work)
    results["resume"] = r = resume_vs_plain(served, url, approved[warm:], rounds, per_round, connections, work)
    print(
        f"  p99 resume {r['resume']['latency_ms']['p99']} ms / plain {r['plain']['latency_ms']['p99']} ms"
        f" = {r['p99_ratio']} (target ≤ {TARGET_P99_RATIO}); per round {r['p99_ratio_per_round']};"
        f" inside the app {r['resume']['in_app_ms']['p99']} / {r['plain']['in_app_ms']['p99']} ms"
        f" = {r['in_app_p99_ratio']}",
        flush=True,
    )
    results["long_poll"] = lp = long_poll(served, url, polls, wake, approvers, wait_s, hold_s)
    print(
        f"  {polls} long-polls: RSS {lp['rss_mb']['before']} → max {lp['rss_mb']['during_max']} MB"
        f" (+{lp['extra_mb']} MB, target < {TARGET_EXTRA_MB}); statuses {lp['statuses']};"
        f" {wake} woken by an approval in p50 {lp['wake_ms_from_approve_sent']['p50']} ms,"
        f" max {lp['wake_ms_from_approve_sent']['max']} ms",
        flush=True,
    )
    results["met"] = r["met"] and lp["met"]
    results["ok"] = r["ok"] and lp["ok"]
    return results


def run(**options: Any) -> dict[str, Any]:
    """`measure` on a new database of the benchmark's PostgreSQL; the server's log is shown if it fails."""
    with postgres.server() as server, tempfile.TemporaryDirectory(prefix="mandate-bench-approvals-") as tmp:
        work = Path(tmp)
        database, url = prepare_database(server)
        try:
            with serve(url, work) as served:
                try:
                    return measure(served, url, work, **options)
                except Exception:
                    print(f"the server's log ends:\n{served.log.read_text()[-4000:]}", file=sys.stderr)  # then gone
                    raise
        finally:
            server.drop(database)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="rounds (each: both kinds, alternating order)")
    parser.add_argument("--per-round", type=int, default=1000, help="requests per round and kind")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections of the load")
    parser.add_argument("--polls", type=int, default=500, help="concurrent long-polls")
    parser.add_argument("--wake", type=int, default=50, help="long-polled requests approved during the hold")
    parser.add_argument("--approvers", type=int, default=1, help="approvers acting at once (each: one by one)")
    parser.add_argument("--wait", type=float, default=30.0, help="the polls' ?wait= (seconds)")
    parser.add_argument("--hold", type=float, default=20.0, help="seconds the polls are held while RSS is sampled")
    parser.add_argument("--quick", action="store_true", help="tiny: 1 round of 32, 40 polls held 2 s (smoke test)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.per_round, args.polls, args.wake, args.wait, args.hold = 1, 32, 40, 4, 3.0, 2.0
    results = run(
        rounds=args.rounds, per_round=args.per_round, connections=args.connections, polls=args.polls,
        wake=args.wake, approvers=args.approvers, wait_s=args.wait, hold_s=args.hold,
    )  # fmt: skip
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if results["met"] and results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
