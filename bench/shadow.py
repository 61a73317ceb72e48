"""Shadow evaluation over a large stored history: a candidate bundle judged against 1,000,000 stored decisions.

The history is generated in SQL (the demo governance, config-management's file writes and table drops with varied
signals, each stored with a verdict), then `mandate.shadow.run.shadow` evaluates a candidate — the demo snapshot
without its "no drop without a backup" BLOCK policy — with one worker per core, and with one process for
comparison. Reported: decisions per second, the share of the time spent reading (waiting for rows from
PostgreSQL) vs evaluating, peak memory of the whole process tree (sampled), and the counts the candidate changes.
"""

from __future__ import annotations

import contextlib
import copy
import os
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

import psutil
import psycopg
import yaml

from bench.postgres import Server
from mandate.apply import apply_bundle
from mandate.db.history import Window
from mandate.governance.bundle import load_bundle, load_demo_bundle
from mandate.migrate.runner import Runner
from mandate.shadow.run import shadow

SIZE = 1_000_000
QUICK_SIZE = 20_000
ORG = "550e8400-e29b-41d4-a716-446655440000"

GENERATE = """
INSERT INTO mandate.decision_events (decision_id, intent, stage, actor, target, context, scope, "timestamp",
                                     organization_id, domain, spec_id, spec_version)
SELECT md5(i::text || 'shadow')::uuid,
       CASE WHEN i %% 2 = 0 THEN 'file.write' ELSE 'database.drop_table' END,
       'pre_commit', 'bench-agent', 'target-' || i,
       CASE WHEN i %% 2 = 0
            THEN jsonb_build_object('content_length', (i::bigint * 7919) %% 3000000,
                                    'content_type', (ARRAY['yaml', 'json', 'toml', 'xml'])[1 + i %% 4])
            ELSE jsonb_build_object('backup_first', i %% 3 = 0,
                                    'risk_level', (ARRAY['low', 'medium', 'high', 'critical'])[1 + (i / 2) %% 4],
                                    'reversible', i %% 5 = 0) END,
       CASE WHEN i %% 2 = 0
            THEN '{"service": "config-writer", "agent": "pre-commit-agent", "environment": "production"}'::jsonb
            ELSE '{"service": "db-admin-tool", "agent": "pause-escalation-agent", "environment": "production"}'::jsonb
       END,
       now() - make_interval(secs => i), %(org)s, 'config-management',
       CASE WHEN i %% 2 = 0 THEN 'spec-pre-commit-file-write-v1' ELSE 'spec-pre-commit-database-drop-table-v1' END, '1'
FROM generate_series(1, %(n)s) AS i;
INSERT INTO mandate.verdict_events (verdict_id, decision_id, stage, verdict, matched_policy_ids, "timestamp",
                                    organization_id, domain, scope_id)
SELECT md5(decision_id::text || 'v')::uuid, decision_id, stage, 'OBSERVE', '{}', "timestamp", organization_id, domain,
       CASE WHEN intent = 'file.write' THEN 'config-management.prod.config-writer'
            ELSE 'config-management.prod.db-admin-tool' END
FROM mandate.decision_events;
ANALYZE mandate.decision_events;
ANALYZE mandate.verdict_events
"""


def _candidate(work: Path) -> Path:
    data = yaml.safe_load(resources.files("mandate.governance").joinpath("demo.yaml").read_text(encoding="utf-8"))
    snapshot = next(s for s in data["snapshots"] if s["domain"] == "config-management")
    changed = copy.deepcopy(snapshot)
    changed["version"] = 2
    changed["policies"] = [p for p in snapshot["policies"] if p["id"] != "policy-block-unbackedup-drops-v1"]
    path = work / "shadow-candidate.yaml"
    path.write_text(yaml.safe_dump({"snapshots": [changed]}, sort_keys=False))
    return path


class _PeakRss:
    """Peak RSS of this process and its children (the workers), sampled every 50 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process(os.getpid())
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a worker that just exited
                    total += p.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(0.05)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def run(server: Server, quick: bool, work: Path) -> dict[str, Any]:
    size = QUICK_SIZE if quick else SIZE
    name = server.create("shadow")
    url = server.url(name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            Runner(conn).up()
            apply_bundle(conn, load_demo_bundle())
            t = time.perf_counter()
            for statement in filter(str.strip, GENERATE.split(";\n")):
                conn.execute(statement, {"org": ORG, "n": size} if "%(" in statement else None)
            generated = time.perf_counter() - t
        bundle = load_bundle([_candidate(work)])
        runs = {}
        for label, workers in (("workers", os.cpu_count() or 1), ("one process", 1)):
            with _PeakRss() as rss:
                result = shadow(url, bundle, Window(), workers=workers)
            t = result.tally
            runs[label] = {
                "workers": result.workers,
                "seconds": round(result.seconds, 2),
                "decisions_per_second": round(result.per_second),
                "read_seconds": round(result.read_seconds, 2),
                "read_share": round(result.read_seconds / result.seconds, 3),
                "peak_rss_mb": round(rss.peak / 2**20),
                "evaluated": t.evaluated,
                "changed": t.changed,
                "transitions": {f"{a} → {b}": n for (a, b), n in t.transitions.items()},
            }
            print(f"   {label}: {runs[label]['seconds']} s, {runs[label]['decisions_per_second']}/s", flush=True)
        return {"decisions": size, "generate_s": round(generated, 1), "runs": runs, "quick": quick}
    finally:
        server.drop(name)
