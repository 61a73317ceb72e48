"""Migration 008 with its secondary indexes built after COMMIT: what it would gain (issue 20, item 4), measured
against 008 as shipped and the `CREATE TABLE … AS SELECT *` reference, in one run.

`python -m bench.split008 [--decisions 1000000] [--quick]` generates one legacy database (bench/migration.py
`generate`), times the reference copy of its three event tables, then clones it twice (`CREATE DATABASE … TEMPLATE`)
and runs on each clone, as the runner does (the file's executable SQL in one transaction):

- *as shipped*: 008 as it is;
- *split*: 008 without the `DEFERRED` index creations — single-column and GIN indexes on the three event tables
  that no key, foreign key, check of 008 or of the post-migration verification needs, and no later migration
  relies on inside the same transaction except 013, which drops two of them — then, after COMMIT, each of them
  `CREATE INDEX CONCURRENTLY`, timed one by one: what an operator would wait for until the database is fully indexed,
  while it already serves.

Kept inside the transaction in both: primary keys and unique indexes, the checklist's composite
(organization_id, domain) indexes, verdict_events (scope_id), the decision_id indexes the later migrations' joins
use. Results: `bench/results/split008.json`; prose in bench/findings.md ("Migration 008 …"). Not part of
`bench all`: an experiment on a proposal (findings, proposal 8), not a measure of what ships.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import postgres
from bench.machine import facts, record, standalone_parser
from bench.migration import generate, reference_ctas, sizes

RESULTS = Path(__file__).resolve().parent / "results" / "split008.json"
_EVENT_INDEX = re.compile(
    r"^CREATE INDEX (idx_(?:decision_events|verdict_events|audit_timeline)_\w+) ON mandate\.\w+ .*;$", re.MULTILINE
)
KEPT = ("org_domain", "decision_id", "scope_id")  # the checklist's composites, verdict_events(scope_id), join paths


def split(sql: str) -> tuple[str, list[tuple[str, str]]]:
    """008's executable SQL without the deferred index creations, and those (name, statement), in file order."""
    deferred = [(m.group(1), m.group(0)) for m in _EVENT_INDEX.finditer(sql) if not any(k in m.group(1) for k in KEPT)]
    for _, statement in deferred:
        sql = sql.replace(statement, "", 1)
    return sql, deferred


def migrate(url: str, sql: str) -> float:
    """Seconds for `sql` in one transaction, committed, as the runner runs a migration (its NOTICEs dropped)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.add_notice_handler(lambda _notice: None)
        conn.execute("CHECKPOINT")
        started = time.perf_counter()
        with conn.transaction():
            conn.execute("SELECT set_config('mandate.runner', 'on', true)")
            conn.execute(sql)  # type: ignore[arg-type]  # a migration file's own SQL
        return time.perf_counter() - started


def build_after_commit(url: str, deferred: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Each deferred index `CREATE INDEX CONCURRENTLY`, one after the other, timed; then whether each is valid."""
    out = []
    with psycopg.connect(url, autocommit=True) as conn:
        for name, statement in deferred:
            started = time.perf_counter()
            conn.execute(statement.replace("CREATE INDEX ", "CREATE INDEX CONCURRENTLY ", 1))  # type: ignore[arg-type]
            out.append({"index": name, "seconds": round(time.perf_counter() - started, 2)})
        valid = dict(
            conn.execute(
                "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = ANY(%s)",
                [[name for name, _ in deferred]],
            ).fetchall()
        )
    for row in out:
        row["valid"] = bool(valid.get(row["index"]))
    return out


def clone(server: postgres.Server, template: str, prefix: str) -> str:
    name = f"{prefix}_{int(time.time() * 1000) % 10**9}"
    with server.admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


def run(server: postgres.Server, decisions: int) -> dict[str, Any]:
    from mandate.migrate.files import load

    m008 = next(f for f in load() if f.version == 8)
    full = m008.executable_sql()
    partial, deferred = split(full)
    legacy = server.create(f"split_legacy_{decisions}")
    made: list[str] = [legacy]
    result: dict[str, Any] = {"decisions": decisions, "deferred": [name for name, _ in deferred]}
    try:
        result["generation"] = generate(server.url(legacy), decisions)
        print(f"  {decisions:,} decisions generated in {result['generation']['generate_s']:.1f} s", flush=True)
        result["size_before"] = sizes(server.url(legacy))["(database)"]
        result["reference_ctas_s"] = round(reference_ctas(server.url(legacy)), 2)
        print(f"  reference CTAS: {result['reference_ctas_s']} s", flush=True)
        for variant, sql in (("as shipped", full), ("split", partial)):
            name = clone(server, legacy, "split_clone")
            made.append(name)
            url = server.url(name)
            seconds = migrate(url, sql)
            row: dict[str, Any] = {"m008_s": round(seconds, 2)}
            row["over_reference"] = round(seconds / result["reference_ctas_s"], 2)
            if variant == "split":
                built = build_after_commit(url, deferred)
                row["after_commit"] = built
                row["after_commit_s"] = round(sum(b["seconds"] for b in built), 2)
                row["all_valid"] = all(b["valid"] for b in built)
            row["size_after"] = sizes(url)["(database)"]
            row["size_ratio"] = round(row["size_after"] / result["size_before"], 3)
            result[variant] = row
            extra = f", then {row['after_commit_s']} s of indexes after COMMIT" if variant == "split" else ""
            print(f"  008 {variant}: {row['m008_s']} s = {row['over_reference']} × reference{extra}", flush=True)
            server.drop(name)
            made.remove(name)
    finally:
        for name in made:
            server.drop(name)
    return result


def main() -> int:
    parser = standalone_parser(__doc__, RESULTS, quick="20,000 decisions")
    parser.add_argument("--decisions", type=int, default=1_000_000)
    args = parser.parse_args()
    decisions = 20_000 if args.quick else args.decisions
    started = time.perf_counter()
    with postgres.server() as server:
        results = {"machine": facts(), "command": "python -m bench.split008", **run(server, decisions)}
    record(results, args.out or (None if args.quick else RESULTS), started)
    ok = results["split"]["all_valid"] and len(results["deferred"]) > 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
