"""Migration 008 on generated legacy databases (LEGACY-SCHEMA.md shape), at 1 M decisions (10 M with --sizes).

Per size: generate the legacy database with `legacy_data.generate_events` (one verdict and two timeline entries per
decision, realistic JSON, 3 organizations × 4 domains × 25 scopes = 300 scopes), VACUUM ANALYZE it as a live
database would be, then measure in the same run:

- the reference: `CREATE TABLE … AS SELECT *` of the three event tables (one transaction), before the migration
  and again after it (on the rebuilt tables); 008 is compared with the mean of the two;
- the whole runbook, `mandate migrate run 008` as an operator runs it (pre-flight with its runtime estimate,
  pre-checks, pg_dump -Fc read back completely, the migration transaction with 008 and 009, post-verification,
  constraint tests, ANALYZE, smoke tests against the API started in-process, the report);
- 008 alone: its duration as recorded in migration_log, phase by phase from the runbook;
- pg_dump alone (the runbook's backup, timed by backup.py) and the backup's full read-verification;
- the database size before and after (no bloat), and the estimate against the actual times.
"""

from __future__ import annotations

import io
import statistics
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import postgres

SIZES = (1_000_000,)
QUICK_SIZES = (10_000,)
SHAPE = {"organizations": 3, "domains_per_org": 4, "scopes_per_domain": 25}
EVENT_TABLES = ("decision_events", "verdict_events", "audit_timeline_entries")
GENERATION_BATCH = 1_000_000


def generate(url: str, decisions: int) -> dict[str, Any]:
    """A legacy database (schema 007, no migration_log) with `decisions` generated decisions, in batches by seed."""
    from tests import legacy_data

    from mandate.migrate.runner import Runner

    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        Runner(conn).up(to=7)
        conn.execute("DROP TABLE mandate.migration_log")
        schema_s = time.perf_counter() - started
        t0 = time.perf_counter()
        # One seed per batch: every call adds its own organizations, so batches keep the shape at any size.
        batches = max(1, decisions // GENERATION_BATCH)
        per_batch = decisions // batches
        orgs = max(1, SHAPE["organizations"] // batches) if batches > 1 else SHAPE["organizations"]
        for seed in range(batches):
            n = per_batch if seed < batches - 1 else decisions - per_batch * (batches - 1)
            legacy_data.generate_events(
                conn,
                decisions=n,
                organizations=orgs,
                domains_per_org=SHAPE["domains_per_org"],
                scopes_per_domain=SHAPE["scopes_per_domain"],
                seed=seed,
            )
        generate_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        vacuum_s = time.perf_counter() - t0
        conn.execute("CHECKPOINT")
        counts = {
            t: int(conn.execute(f"SELECT count(*) FROM mandate.{t}").fetchone()[0])  # type: ignore[index]  # noqa: S608
            for t in ("organizations", "domains", "scopes", *EVENT_TABLES)
        }
    return {
        "schema_s": round(schema_s, 2),
        "generate_s": round(generate_s, 2),
        "vacuum_analyze_s": round(vacuum_s, 2),
        "batches": batches,
        "counts": counts,
    }


def reference_ctas(url: str) -> float:
    """Seconds to copy the three event tables with CREATE TABLE … AS SELECT * in one transaction (then dropped)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        started = time.perf_counter()
        with conn.transaction():
            for t in EVENT_TABLES:
                conn.execute(f"CREATE TABLE mandate.bench_copy_{t} AS SELECT * FROM mandate.{t}")  # noqa: S608
        seconds = time.perf_counter() - started
        for t in EVENT_TABLES:
            conn.execute(f"DROP TABLE mandate.bench_copy_{t}")
        conn.execute("CHECKPOINT")
    return seconds


def sizes(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        rows = conn.execute(
            """SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'mandate' AND c.relkind = 'r'"""
        ).fetchall()
        db = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
    out = {name: int(size) for name, size in rows}
    out["(database)"] = int(db)
    return out


def preflight_estimates(url: str, count: int = 2) -> list[float]:
    """The runbook's pre-flight, `count` times on the legacy database as it stands (no backup, nothing changed): the
    migration step's estimate each time. With the runbook's own, they show how far two estimates of one database
    apart (issue 20, item 5: within ±20 %)."""
    from mandate.migrate import preflight

    out = []
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(count):
            found = preflight.run(conn, backup_dir=None, allow_connections=True, needs_backup=False, settle_s=0)
            assert found.estimate is not None
            out.append(round(found.estimate.migration_s, 2))
    return out


def spread(estimates: list[float]) -> float:
    """The largest distance of an estimate from their median, as a share of the median."""
    middle = statistics.median(estimates)
    return round(max(abs(e - middle) for e in estimates) / middle, 3) if middle else 0.0


def runbook(url: str, work: Path) -> dict[str, Any]:
    """`mandate migrate run 008 --yes --allow-connections` in-process; its report data."""
    from rich.console import Console

    from mandate.migrate.runbook import Options, Runbook
    from mandate.migrate_commands import api_app

    backups = work / "backups"
    options = Options(yes=True, allow_connections=True, backup_dir=backups, report=work / "m008-report.md")
    console = Console(file=io.StringIO(), width=120)
    started = time.perf_counter()
    outcome = Runbook(url, options, data_dir=work / "data", console=console, live=False, api_app=api_app).run()
    wall_s = time.perf_counter() - started
    data = outcome.data
    committed = bool((data.get("migration") or {}).get("committed"))
    if outcome.status != "succeeded" and not committed:
        raise RuntimeError(f"the 008 runbook did not succeed ({outcome.status}): {outcome.message}")
    backup = data.get("backup") or {}
    for f in backups.rglob("*.dump"):
        f.unlink()  # the archive is as big as the database; the report keeps its size and checksum
    return {
        "status": outcome.status,
        "message": outcome.message if outcome.status != "succeeded" else None,
        "wall_s": round(wall_s, 2),
        "steps": {s["name"]: s["duration_s"] for s in data.get("steps", [])},
        "phases": [
            {"number": p.get("number"), "name": p.get("title"), "duration_s": p.get("duration_s")}
            for p in data.get("phases", [])
        ],
        "estimate": data.get("estimate"),
        "actual": data.get("actual"),
        "pg_dump_s": backup.get("dump_s"),
        "backup_verify_s": (backup.get("verification") or {}).get("duration_s"),
        "backup_bytes": backup.get("size"),
        "migration": {k: v for k, v in (data.get("migration") or {}).items() if k in ("duration_s", "attempts")},
        "report": str(outcome.report_markdown),
    }


def migration_log_ms(url: str) -> dict[int, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT migration_version, duration_ms FROM mandate.migration_log WHERE NOT baseline"
        ).fetchall()
    return {int(v): float(ms) for v, ms in rows}


def run_size(server: postgres.Server, decisions: int, work: Path, keep: bool) -> dict[str, Any]:
    name = server.create(f"legacy_{decisions}")
    url = server.url(name)
    result: dict[str, Any] = {"decisions": decisions, "shape": SHAPE}
    try:
        result["generation"] = generate(url, decisions)
        print(
            f"  {decisions:>9,} decisions generated in {result['generation']['generate_s']:.1f} s"
            f" (+ VACUUM ANALYZE {result['generation']['vacuum_analyze_s']:.1f} s)",
            flush=True,
        )
        before = sizes(url)
        result["size_before"] = before
        result["preflight_estimates_s"] = preflight_estimates(url)
        ref_before = reference_ctas(url)
        print(f"  reference CTAS of the event tables: {ref_before:.1f} s", flush=True)
        rb = runbook(url, work / f"runbook-{decisions}")
        result["runbook"] = rb
        logged = migration_log_ms(url)
        result["migration_log_ms"] = logged
        after = sizes(url)
        result["size_after"] = after
        ref_after = reference_ctas(url)
        result["reference_ctas_s"] = {"before": round(ref_before, 2), "after": round(ref_after, 2)}
        reference = (ref_before + ref_after) / 2
        m008 = logged[8] / 1000
        result["m008_s"] = round(m008, 2)
        result["m008_over_reference"] = round(m008 / reference, 2)
        result["size_ratio"] = round(after["(database)"] / before["(database)"], 3)
        estimate = rb.get("estimate") or {}
        actual = rb.get("actual") or {}
        if estimate.get("migration_s") and actual.get("migration_s"):
            result["estimate_error_migration"] = round(estimate["migration_s"] / actual["migration_s"] - 1, 3)
        if estimate.get("migration_s"):
            repeated = [*result["preflight_estimates_s"], round(estimate["migration_s"], 2)]
            result["preflight_estimates_s"] = repeated
            result["estimate_spread"] = spread(repeated)
        if estimate.get("total_s"):
            total_actual = (actual.get("migration_s") or 0) + (actual.get("backup_s") or 0)
            result["estimate_error_total"] = round(estimate["total_s"] / total_actual - 1, 3) if total_actual else None
        print(
            f"  008 {m008:.1f} s = {result['m008_over_reference']:.2f} × reference ({reference:.1f} s);"
            f" runbook {rb['wall_s']:.1f} s; pg_dump {rb['pg_dump_s']} s;"
            f" size after/before {result['size_ratio']:.3f}",
            flush=True,
        )
    finally:
        if not keep:
            server.drop(name)
    result["database"] = name if keep else None
    return result


def run(server: postgres.Server, quick: bool, work: Path, sizes_: tuple[int, ...] | None = None) -> dict[str, Any]:
    chosen = sizes_ or (QUICK_SIZES if quick else SIZES)
    results = []
    for i, n in enumerate(chosen):
        keep = i == len(chosen) - 1  # the largest migrated database is kept for the reads benchmark
        results.append(run_size(server, n, work, keep))
    return {"quick": quick, "sizes": results}
