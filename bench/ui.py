"""The UI's list and overview pages at scale (issue 21): a database of N generated decisions in the current schema,
served by `mandate serve`, each page asked up to 200 times, one request at a time.

    python -m bench.ui --decisions 10000000 --budget 40   # the acceptance size (42 GB: 16 min of loading, 31 in all)
    python -m bench.ui --decisions 100000                 # a development size (~10 s of loading)
    python -m bench.ui --quick                            # tiny: 20,000 decisions, 10 requests per page (smoke test)

1. **Database**: a dedicated PostgreSQL (bench/postgres.py), a new database migrated to head with the demo governance
   (bench/ingest.py `prepare_database`). 2,110 *templates* are decided by the server's own code (`service.prepare`:
   the evaluator, the Observe phase on the chatbot's drafted replies, a PAUSE's approval request) from varied
   actions of the demo's four agents (330 actors, file sizes and formats, risk levels, refund amounts, customers) and
   of 100 unregistered agents (governance gaps). N decisions are then written with set-based SQL (`INSERT … SELECT …
   FROM generate_series`, 1 M per chunk, two sessions at once): each row takes a template by a hash of its number,
   so the verdicts are 70 % ALLOW / 15 % OBSERVE / 10 % BLOCK / 5 % PAUSE and the two domains about half each, and
   gets its own decision and verdict ids, a timestamp spread evenly over `--days` (90) up to the start of the load,
   its request hash, and for logins and the chatbot's replies its own user or customer number (target and context).
   Each decision gets what `service.INSERT_DECISION` writes: its decision_events row, its verdict (the explanation
   JSON as stored, a PAUSE's expiry set from the row's time) and its two timeline entries; each PAUSE its approval
   request (`INSERT_GOVERNED_DECISION`). Requests whose time ran out get what approvers and the sweeper would have
   written: 45 % approved (every requirement) then expired unused, 15 % rejected, the rest expired, each event with
   its timeline entry (db/approvals.py `append_resolution`, `SWEEP`). Resumes (consumptions) and findings are not
   generated.

   Loading is fast because the loaded tables' secondary indexes are dropped and built again afterwards (their own
   definitions, from pg_get_indexdef; two at a time), triggers and so foreign-key checks are off in the loading
   sessions (`session_replication_role = replica`, when the role may), autovacuum is off on those tables while they
   load, commits are asynchronous, and the embedded server's `max_wal_size` is 8 GB during the load; everything is
   put back before measuring. Then VACUUM and ANALYZE. The rows are checked: counts, the verdict mix, the foreign
   keys (anti-joins), and through the server (`GET /api/decisions/{id}`: 200 with the stored verdict; its UI page:
   200).
2. **Pages**: `mandate serve --workers <cores>` (bench/served.py, authentication off as the other benchmarks run
   it), running the committed code (HEAD's src/ exported; other engineers' edits in progress are recorded, not
   served). Each page kind is asked `--requests` times one request at a time with varied parameters, within
   `--budget` seconds (at least 3 requests): the decisions list `/` by domain, + a verdict, + a policy, + a scope,
   + an owning team, + a partial text (part of an actor's name; a rare customer number in the target), a deep page
   (a cursor at a random row); `/overview` with each preset (`range=1h`, `24h`, `7d`) and without (all time); the
   approvals queue `/approvals`. Latency is timed by the client; the server's access log gives each request's time
   in the app. A page whose counts or chart hit the UI's statement timeout (`AGGREGATE_TIMEOUT`) still answers 200,
   without them and with a note: such answers are counted and never meet the target.
3. **Plans**: the SQL behind one request of each kind (the same query functions, recorded on a real connection) under
   EXPLAIN (ANALYZE, BUFFERS), slowest kinds first within `--plans` seconds; the approval sweeper's statement (it
   runs every 15 s in every worker during the measurement).
4. **Partial text**: the list's query with any part of a value (`ILIKE '%x%'`, what the UI does) against a prefix
   (`lower(col) LIKE 'x%'`) before and after a btree index built for the experiment (`text_search`).

The target (issue 21): p99 ≤ 200 ms of server time per page. Results: `--out` (bench/results/ui.json), prose in
bench/findings.md ("UI pages at N decisions").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from bench import postgres
from bench.ingest import prepare_database
from bench.machine import facts as machine_facts
from bench.migration import sizes
from bench.served import WORKERS, Served, serve
from bench.stats import summary

TARGET_MS = 200.0
ORGANIZATION_ID = "550e8400-e29b-41d4-a716-446655440000"
DOMAINS = ("config-management", "customer-support")
MIX = (("ALLOW", 700), ("OBSERVE", 150), ("BLOCK", 100), ("PAUSE", 50))  # per mille
CHUNK = 1_000_000
LOAD_SESSIONS = 2  # loading sessions at once (the machine's two cores)
POSITIVE = 2**63 - 1  # a hash's sign bit cleared (abs() of the smallest bigint overflows)
LOADED = ("decision_events", "verdict_events", "audit_timeline_entries", "approval_requests", "approval_resolutions")
EXPLAIN_TIMEOUT_S = 20  # a statement the plans wait for at most
TIMEOUT_NOTE = "took longer than"  # the UI's note when counts or the chart hit AGGREGATE_TIMEOUT


# -- templates: actions decided by the server's own code ---------------------------------------------------------

_SERVICES = ("payments", "checkout", "search", "billing", "auth", "gateway", "inventory", "ledger", "mailer", "cdn")
_TABLES = ("sessions", "audit_tmp", "carts", "events_2024", "staging_orders", "cache", "imports", "feature_flags")
_CONFIG_KEYS = ("max_connections", "pool_size", "timeout_ms", "log_level", "retries", "feature.beta", "rate_limit")


def _actors(agent: str, count: int) -> list[str]:
    return [f"{agent}-{n:03d}" for n in range(1, count + 1)]


def _bodies(rng: random.Random) -> list[dict[str, Any]]:
    """Varied actions of the demo's agents (and of unregistered ones: governance gaps), as request bodies."""
    writers, dbas = _actors("pre-commit-agent", 80), _actors("pause-escalation-agent", 40)
    observers, bots = _actors("observe-agent", 60), _actors("chatbot-v3", 150)

    def body(domain: str, intent: str, stage: str, actor: str, target: str, context: dict[str, Any],
             scope: dict[str, str], text: str | None = None) -> dict[str, Any]:  # fmt: skip
        b: dict[str, Any] = {
            "decision_id": str(uuid.uuid4()),
            "organization_id": ORGANIZATION_ID,
            "domain": domain,
            "intent": intent,
            "stage": stage,
            "actor": actor,
            "target": target,
            "context": context,
            "scope": scope,
        }
        if text is not None:
            b["unstructured_context"] = text
        return b

    def scope(service: str, agent: str) -> dict[str, str]:
        return {"service": service, "agent": agent, "environment": "production"}

    cm, cs = DOMAINS
    out: list[dict[str, Any]] = []
    for _ in range(500):  # file writes: small (ALLOW), large (PAUSE), another format (OBSERVE by default)
        kind = rng.choices(("small", "large", "other"), (6, 2, 2))[0]
        ext = rng.choice(("yaml", "json", "toml")) if kind != "other" else rng.choice(("xml", "ini"))
        size = rng.randint(1_048_576, 30_000_000) if kind == "large" else rng.randint(200, 1_048_575)
        target = f"/data/config/{rng.choice(_SERVICES)}/{rng.choice(('app', 'routes', 'limits', 'flags'))}.{ext}"
        out.append(body(cm, "file.write", "pre_commit", rng.choice(writers), target,
                        {"content_length": size, "content_type": ext}, scope("config-writer", "pre-commit-agent")))  # fmt: skip
    for _ in range(400):  # table drops: without a backup (BLOCK), critical (PAUSE), low risk (ALLOW), others
        kind = rng.choice(("unbacked", "critical", "low", "medium"))
        risk = {"critical": "critical", "low": "low"}.get(kind, rng.choice(("medium", "high")))
        context = {"risk_level": risk, "reversible": kind == "low" or rng.random() < 0.3,
                   "backup_first": kind != "unbacked", "cascade": rng.random() < 0.2}  # fmt: skip
        target = f"{rng.choice(('production', 'staging', 'analytics'))}.{rng.choice(_TABLES)}"
        out.append(body(cm, "database.drop_table", "pre_commit", rng.choice(dbas), target, context,
                        scope("db-admin-tool", "pause-escalation-agent")))  # fmt: skip
    audit = scope("audit-logger", "observe-agent")
    for _ in range(120):  # executed actions, observed (the user's number is the row's own: see `numbered`)
        user = f"user-{rng.randint(0, 999_999):06d}"
        out.append(body(cm, "user.login", "executed", rng.choice(observers), f"user:{user}",
                        {"user_id": user, "ip_address": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.7",
                         "auth_method": rng.choice(("password", "oauth", "mfa")), "execution_success": True}, audit))  # fmt: skip
        out.append(body(cm, "data.export", "executed", rng.choice(observers),
                        f"export:{rng.choice(('customers', 'orders', 'invoices'))}-{rng.randint(1, 99)}.csv",
                        {"format": rng.choice(("csv", "json", "parquet")), "record_count": rng.randint(10, 900_000),
                         "includes_pii": rng.random() < 0.4, "execution_success": True}, audit))  # fmt: skip
        key = rng.choice(_CONFIG_KEYS)
        out.append(body(cm, "config.update", "executed", rng.choice(observers), f"config:{key}",
                        {"key": key, "old_value": str(rng.randint(1, 500)), "new_value": str(rng.randint(1, 500)),
                         "execution_success": True}, audit))  # fmt: skip
    for n in range(100):  # unregistered agents: no scope holds authority (a governance gap, OBSERVE)
        out.append(body(cm, "file.write", "pre_commit", f"shadow-agent-{n:03d}", f"/tmp/shadow-{n}.yaml",
                        {"content_length": rng.randint(200, 90_000), "content_type": "yaml"},
                        scope(f"sidecar-{n % 12}", f"shadow-agent-{n:03d}")))  # fmt: skip
    chat = scope("chat-api", "chatbot-v3")
    for _ in range(750):  # the chatbot's drafted replies, its signals extracted by the Observe phase
        customer = f"C{rng.randint(0, 999_999):06d}"
        kind = rng.choices(("info", "refund", "completed"), (5, 1, 1))[0]
        if kind == "info":
            text = rng.choice((
                f"Your seat is {rng.randint(1, 40)}{rng.choice('ABCDEF')} and boarding starts at "
                f"{rng.randint(5, 22)}:{rng.choice(('05', '20', '40'))}.",
                f"Your booking reference is {rng.randint(100000, 999999)}; check-in opens 24 hours before departure.",
                "You can bring one cabin bag of up to 8 kg and one personal item.",
            ))  # fmt: skip
        elif kind == "refund":
            text = f"I've issued a refund of ${rng.randint(100, 2000)} for your flight, which departed this morning."
        else:
            text = "Your flight has completed, and I'm processing a full refund for you."
        out.append(body(cs, "issue_refund", "pre_commit", rng.choice(bots), f"customer:{customer}",
                        {"customer_id": customer}, chat, text))  # fmt: skip
    return out


# Where a row gets its own number: (target prefix, context key, context value prefix) per intent.
NUMBERED = {"user.login": ("user:user-", "user_id", "user-"), "issue_refund": ("customer:C", "customer_id", "C")}


async def _decide(url: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each body decided as the server decides it (`service.prepare`): the parameters of its one statement."""
    from mandate import service
    from mandate.db.governance import load_governance
    from mandate.web.api import DecisionBody, to_request

    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as c:
        governance = await load_governance(c)
    out = []
    for b in bodies:
        req = to_request(DecisionBody.model_validate(b), datetime.now(UTC))
        prepared = service.prepare(governance, req)
        out.append({k: (v.obj if isinstance(v, Jsonb) else v) for k, v in prepared.params.items()})
    return out


def templates(url: str, seed: int = 21) -> dict[str, int]:
    """The template table (bench_ui.templates), from the decided bodies; how many templates per verdict."""
    rng = random.Random(seed)
    decided = asyncio.run(_decide(url, _bodies(rng)))
    per: dict[str, int] = {}
    rows = []
    for p in decided:
        verdict = p["verdict"]
        k = per.get(verdict, 0)
        per[verdict] = k + 1
        numbered = NUMBERED.get(p["intent"]) if verdict != "PAUSE" else None  # a PAUSE keeps its binding's action
        target = numbered[0] if numbered else p["target"]
        pause_for = p["pause_expires_at"] - p["timestamp"] if p["pause_expires_at"] else None
        received = {k2: v for k2, v in p["received_details"].items() if k2 != "request_hash"}
        evaluated = {k2: v for k2, v in p["evaluated_details"].items() if k2 not in ("verdict_id", "approval_id")}
        rows.append((
            verdict, k, p["intent"], p["stage"], p["actor"], target, numbered[1] if numbered else None,
            numbered[2] if numbered else None, Jsonb(p["context"]), Jsonb(p["scope"]), p["domain"], p["spec_id"],
            p["spec_version"], p["snapshot_id"], p["snapshot_version"], p["matched"], p["scope_id"],
            p["owning_team"], p["summary"], Jsonb(p["explanation"]), p["pause_requires"], pause_for, Jsonb(received),
            p["evaluated_summary"], Jsonb(evaluated), p["severity"], p.get("escalation"), p.get("requirements"),
            p.get("binding_digest"), Jsonb(p["binding"]) if p.get("binding") is not None else None,
        ))  # fmt: skip
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench_ui")
        conn.execute(
            """CREATE TABLE bench_ui.templates (
                   verdict text, k int, intent text, stage text, actor text, target text, id_key text,
                   id_prefix text, context jsonb, scope jsonb, domain text, spec_id text, spec_version text,
                   snapshot_id uuid, snapshot_version int, matched text[], scope_id text, owning_team text,
                   summary text, explanation jsonb, pause_requires text[], pause_for interval, received jsonb,
                   evaluated_summary text, evaluated jsonb, severity text, escalation text[], requirements text[],
                   binding_digest text, binding jsonb, PRIMARY KEY (verdict, k))"""
        )
        with conn.cursor() as cur:
            values = sql.SQL(", ").join([sql.Placeholder()] * 30)
            cur.executemany(sql.SQL("INSERT INTO bench_ui.templates VALUES ({})").format(values), rows)
        conn.execute("ANALYZE bench_ui.templates")
    missing = {v for v, _ in MIX} - set(per)
    if missing:
        raise RuntimeError(f"no template decided {missing}: the demo governance changed")
    return per


# -- generation: set-based SQL, chunk by chunk -------------------------------------------------------------------


def _rows_sql(per: dict[str, int], where: str = "") -> sql.SQL:
    """Rows %(lo)s..%(hi)s of the generated history, each joined to its template (`where` filters the verdict)."""
    bounds, acc = [], 0
    for verdict, share in MIX:
        acc += share
        bounds.append(f"WHEN h1 < {acc} THEN '{verdict}'")
    counts = " ".join(f"WHEN '{v}' THEN {per[v]}" for v, _ in MIX)
    text = f"""
    SELECT g.i, t.*,
           md5('mandate-bench-ui-d' || g.i)::uuid AS decision_id,
           md5('mandate-bench-ui-v' || g.i)::uuid AS verdict_id,
           %(start)s::timestamptz + (g.i - 1 + s.frac) * %(step)s::interval AS ts,
           CASE WHEN t.id_key IS NULL THEN t.target ELSE t.target || s.num END AS row_target,
           CASE WHEN t.id_key IS NULL THEN t.context
                ELSE t.context || jsonb_build_object(t.id_key, t.id_prefix || s.num) END AS row_context,
           encode(sha256(convert_to('mandate-bench-ui' || g.i, 'UTF8')), 'hex') AS request_hash
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS g (i)
    CROSS JOIN LATERAL (
        SELECT CASE {" ".join(bounds)} END AS verdict, h2, frac, num
        FROM (SELECT (hashint8extended(g.i, 1) & {POSITIVE}) %% 1000 AS h1,
                     hashint8extended(g.i, 2) & {POSITIVE} AS h2,
                     ((hashint8extended(g.i, 3) & {POSITIVE}) %% 1000000) / 1000000.0 AS frac,
                     lpad(((hashint8extended(g.i, 4) & {POSITIVE}) %% 1000000)::text, 6, '0') AS num) AS h
    ) AS s
    JOIN bench_ui.templates t ON t.verdict = s.verdict AND t.k = s.h2 %% CASE s.verdict {counts} END
    {where}"""  # noqa: S608 - constants and integers only
    return sql.SQL(text)


def _inserts(per: dict[str, int]) -> list[tuple[str, sql.Composed]]:
    """What `service.INSERT_DECISION` (and for a PAUSE `INSERT_GOVERNED_DECISION`) writes, for a chunk of rows."""
    rows = _rows_sql(per)
    paused = _rows_sql(per, "WHERE s.verdict = 'PAUSE'")
    return [
        (
            "decision_events",
            sql.SQL("""
        INSERT INTO mandate.decision_events (decision_id, intent, stage, actor, target, context, scope, "timestamp",
                                             created_at, organization_id, domain, spec_id, spec_version,
                                             request_hash, token_id, verdict)
        SELECT decision_id, intent, stage::mandate.stage, actor, row_target, row_context, scope, ts,
               ts + interval '2 ms', %(organization_id)s, domain, spec_id, spec_version, request_hash, NULL,
               verdict::mandate.verdict
        FROM ({rows}) r""").format(rows=rows),
        ),
        (
            "verdict_events",
            sql.SQL("""
        INSERT INTO mandate.verdict_events (verdict_id, decision_id, stage, snapshot_id, snapshot_version, verdict,
                                            matched_policy_ids, "timestamp", created_at, organization_id, domain,
                                            spec_id, spec_version, scope_id, owning_team, summary, explanation,
                                            pause_requires, pause_expires_at)
        SELECT verdict_id, decision_id, stage::mandate.stage, snapshot_id, snapshot_version,
               verdict::mandate.verdict, matched, ts + interval '300 us', ts + interval '2 ms', %(organization_id)s,
               domain, spec_id, spec_version, scope_id, owning_team, summary,
               CASE WHEN pause_for IS NULL THEN explanation
                    ELSE jsonb_set(explanation, '{{pause,expires_at}}',
                                   to_jsonb(to_char((ts + pause_for) AT TIME ZONE 'UTC',
                                                    'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))) END,
               pause_requires, ts + pause_for
        FROM ({rows}) r""").format(rows=rows),
        ),
        (
            "audit_timeline_entries",
            sql.SQL("""
        INSERT INTO mandate.audit_timeline_entries (decision_id, stage, decision_stage, intent, actor, target,
                                                    summary, details, severity, event_source, authority_level,
                                                    "timestamp", created_at, organization_id, domain, spec_id,
                                                    spec_version)
        SELECT r.decision_id, r.stage::mandate.stage, r.stage::mandate.stage, r.intent, r.actor, r.row_target,
               e.summary, e.details, e.severity, e.source::mandate.event_source,
               e.source::mandate.authority_level, e.at, r.ts + interval '2 ms', %(organization_id)s, r.domain,
               r.spec_id, r.spec_version
        FROM ({rows}) r CROSS JOIN LATERAL (VALUES
            ('decision received', r.received || jsonb_build_object('request_hash', r.request_hash), 'info',
             'agent', r.ts + interval '100 us'),
            (r.evaluated_summary, r.evaluated || jsonb_build_object('verdict_id', r.verdict_id::text)
                || CASE WHEN r.verdict = 'PAUSE' THEN jsonb_build_object('approval_id', r.verdict_id::text)
                        ELSE '{{}}'::jsonb END,
             r.severity, 'system', r.ts + interval '300 us')
        ) AS e (summary, details, severity, source, at)""").format(rows=rows),
        ),
        (
            "approval_requests",
            sql.SQL("""
        INSERT INTO mandate.approval_requests (approval_id, decision_id, stage, verdict_id, organization_id, domain,
                                               spec_id, spec_version, snapshot_id, snapshot_version, scope_id,
                                               owning_team, escalation, requirements, binding_digest, binding,
                                               expires_at, token_id, created_at)
        SELECT verdict_id, decision_id, stage::mandate.stage, verdict_id, %(organization_id)s, domain, spec_id,
               spec_version, snapshot_id, snapshot_version, scope_id, owning_team, escalation, requirements,
               binding_digest, binding, ts + pause_for, NULL, ts + interval '2 ms'
        FROM ({rows}) r""").format(rows=paused),
        ),
    ]


RESOLUTIONS = """
WITH due AS (
    SELECT a.approval_id, a.requirements, a.created_at, a.expires_at, a.decision_id, a.stage,
           abs(hashtext(a.approval_id::text)) %% 100 AS h
    FROM mandate.approval_requests a WHERE a.expires_at <= %(now)s
), events AS (
    SELECT approval_id, 'approved' AS kind, r.requirement, 'approver-' || (h %% 12) AS actor, NULL AS reason,
           created_at + make_interval(mins => 1 + h %% 40) + r.n * interval '1 minute' AS at, decision_id, stage
    FROM due CROSS JOIN LATERAL unnest(requirements) WITH ORDINALITY AS r (requirement, n) WHERE h < 45
    UNION ALL
    SELECT approval_id, 'rejected', NULL, 'approver-' || (h %% 12), 'not without a second look',
           created_at + make_interval(mins => 1 + h %% 40), decision_id, stage
    FROM due WHERE h >= 45 AND h < 60
    UNION ALL
    SELECT approval_id, 'expired', NULL, 'sweeper', 'nobody resolved it before it expired', expires_at, decision_id,
           stage
    FROM due WHERE h < 45 OR h >= 60
), ins AS (
    INSERT INTO mandate.approval_resolutions (resolution_id, approval_id, kind, requirement, token_id, actor, reason,
                                              created_at)
    SELECT gen_random_uuid(), approval_id, kind, requirement, NULL, actor, reason, at FROM events
    RETURNING approval_id
)
INSERT INTO mandate.audit_timeline_entries (decision_id, stage, decision_stage, intent, actor, target, summary,
                                            details, severity, event_source, authority_level, "timestamp",
                                            created_at, organization_id, domain, spec_id, spec_version)
SELECT d.decision_id, d.stage, d.stage, d.intent, e.actor, d.target,
       CASE e.kind WHEN 'expired' THEN 'approval expired'
                   ELSE 'approval ' || e.kind || coalesce(': ' || e.requirement, '') || ' by ' || e.actor END,
       jsonb_build_object('approval_id', e.approval_id, 'kind', e.kind)
           || CASE WHEN e.kind = 'expired' THEN '{}'::jsonb
                   ELSE jsonb_build_object('requirement', e.requirement, 'token_id', NULL, 'reason', e.reason) END,
       CASE WHEN e.kind IN ('rejected', 'expired') THEN 'warning' ELSE 'info' END,
       CASE WHEN e.kind = 'expired' THEN 'system' ELSE 'human' END::mandate.event_source,
       CASE WHEN e.kind = 'expired' THEN 'system' ELSE 'human' END::mandate.authority_level,
       e.at, e.at, d.organization_id, d.domain, d.spec_id, d.spec_version
FROM events e JOIN mandate.decision_events d ON d.decision_id = e.decision_id AND d.stage = e.stage
"""


def _secondary_indexes(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str]]:
    """(table, index, definition) of the loaded tables' indexes that back no constraint."""
    rows = conn.execute(
        """SELECT c.relname, i.relname, pg_get_indexdef(i.oid)
           FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'mandate' AND c.relname = ANY(%s)
             AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.oid)
           ORDER BY c.relname, i.relname""",
        [list(LOADED)],
    ).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def _session(conn: psycopg.Connection[Any]) -> bool:
    """A loading session's settings: asynchronous commits, memory for index builds, and triggers (the foreign-key
    checks are triggers) off when the role may. Whether they are off."""
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET maintenance_work_mem = '1GB'")
    try:
        conn.execute("SET session_replication_role = replica")
        return True
    except psycopg.errors.InsufficientPrivilege:
        return False


@contextmanager
def _loading(server: postgres.Server, url: str) -> Iterator[tuple[psycopg.Connection[Any], dict[str, Any]]]:
    """A loading session (`_session`), autovacuum off on the loaded tables and, on the embedded server, a larger
    max_wal_size; everything put back afterwards."""
    notes: dict[str, Any] = {"sessions": LOAD_SESSIONS}
    with psycopg.connect(url, autocommit=True) as conn:
        notes["triggers_off"] = _session(conn)
        for t in LOADED:
            conn.execute(sql.SQL("ALTER TABLE mandate.{} SET (autovacuum_enabled = false)").format(sql.Identifier(t)))
        wal = server.embedded
        if wal:
            with server.admin() as admin:
                admin.execute("ALTER SYSTEM SET max_wal_size = '8GB'")
                admin.execute("SELECT pg_reload_conf()")
        notes["max_wal_size_raised"] = wal
        try:
            yield conn, notes
        finally:
            conn.execute("RESET session_replication_role")
            for t in LOADED:
                conn.execute(sql.SQL("ALTER TABLE mandate.{} RESET (autovacuum_enabled)").format(sql.Identifier(t)))
            if wal:
                with server.admin() as admin:
                    admin.execute("ALTER SYSTEM RESET max_wal_size")
                    admin.execute("SELECT pg_reload_conf()")


Job = tuple[str, list[tuple[str, Any, dict[str, Any] | None]]]  # label, (name, statement, parameters) in order


def _in_parallel(url: str, jobs: list[Job], done: Callable[[str, dict[str, float]], None]) -> dict[str, float]:
    """Run `jobs` on LOAD_SESSIONS loading sessions at once (each job's statements in order, on one session); the
    seconds spent per statement name, summed."""
    pending = list(reversed(jobs))
    lock = threading.Lock()
    spent: dict[str, float] = {}
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                _session(conn)
                while not failures:
                    with lock:
                        if not pending:
                            return
                        label, statements = pending.pop()
                    mine: dict[str, float] = {}
                    for name, statement, params in statements:
                        t0 = time.perf_counter()
                        conn.execute(statement, params)
                        mine[name] = mine.get(name, 0.0) + time.perf_counter() - t0
                    with lock:
                        for name, seconds in mine.items():
                            spent[name] = spent.get(name, 0.0) + seconds
                        done(label, mine)
        except BaseException as exc:  # re-raised by the caller's thread
            failures.append(exc)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(LOAD_SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    return spent


def generate(server: postgres.Server, url: str, decisions: int, days: float, chunk: int = CHUNK) -> dict[str, Any]:
    """N decisions in the database (which has the demo governance): templates, rows chunk by chunk, resolutions,
    then VACUUM, the indexes, VACUUM ANALYZE. Timings of each step."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    per = templates(url)
    timings["templates_s"] = time.perf_counter() - t0
    print(f"  {sum(per.values())} templates decided by the server's code: {per}", flush=True)
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=days)
    step = timedelta(days=days) / decisions
    started = time.perf_counter()
    with _loading(server, url) as (conn, notes):
        indexes = _secondary_indexes(conn)
        for _, name, _ in indexes:
            conn.execute(sql.SQL("DROP INDEX mandate.{}").format(sql.Identifier(name)))
        t0 = time.perf_counter()
        statements = _inserts(per)
        jobs: list[Job] = []
        for lo in range(1, decisions + 1, chunk):
            hi = min(decisions, lo + chunk - 1)
            params = {"lo": lo, "hi": hi, "start": start, "step": step, "organization_id": ORGANIZATION_ID}
            jobs.append((f"{lo:,}-{hi:,}", [(name, statement, params) for name, statement in statements]))
        written = [0]

        def chunk_done(label: str, mine: dict[str, float]) -> None:
            lo, hi = (int(x.replace(",", "")) for x in label.split("-"))
            written[0] += hi - lo + 1
            elapsed = time.perf_counter() - t0
            print(
                f"  {written[0]:>11,} / {decisions:,} decisions in {elapsed:7.1f} s ({written[0] / elapsed:,.0f}/s;"
                f" rows {label}: " + ", ".join(f"{n} {s:.0f} s" for n, s in mine.items()) + ")",
                flush=True,
            )

        spent = _in_parallel(url, jobs, chunk_done)
        timings["rows_s"] = time.perf_counter() - t0
        timings.update({f"rows_{n}_s": s for n, s in spent.items()})
        t0 = time.perf_counter()
        conn.execute(RESOLUTIONS, {"now": now})
        timings["resolutions_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        # Before the indexes: the heap's hint bits and visibility map, nothing to clean.
        vacuums: list[Job] = [(t, [(t, sql.SQL("VACUUM mandate.{}").format(sql.Identifier(t)), None)]) for t in LOADED]
        _in_parallel(url, vacuums, lambda label, mine: None)
        timings["vacuum_s"] = time.perf_counter() - t0
        print(f"  rows and resolutions written, vacuumed in {timings['vacuum_s']:.0f} s", flush=True)
        t0 = time.perf_counter()
        gin_first = sorted(indexes, key=lambda i: (" USING gin " not in i[2], i[0] != "audit_timeline_entries"))
        builds: list[Job] = [(name, [(name, definition, None)]) for _, name, definition in gin_first]

        def built_one(label: str, mine: dict[str, float]) -> None:
            print(f"    index {label} in {mine[label]:.0f} s ({time.perf_counter() - t0:.0f} s)", flush=True)

        built = _in_parallel(url, builds, built_one)
        timings["indexes_s"] = time.perf_counter() - t0
        print(f"  {len(indexes)} indexes built again in {timings['indexes_s']:.0f} s", flush=True)
        t0 = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        timings["vacuum_analyze_s"] = time.perf_counter() - t0
        conn.execute("DROP SCHEMA bench_ui CASCADE")
        conn.execute("CHECKPOINT")
    timings["load_s"] = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as conn:
        rebuilt = {r[1] for r in _secondary_indexes(conn)}
    return {
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "templates": per,
        "span": [start.isoformat(), now.isoformat()],
        "chunk": chunk,
        "indexes_rebuilt": len(indexes),
        "indexes_missing_after": sorted({n for _, n, _ in indexes} - rebuilt),
        "index_build_s": {k: round(v, 1) for k, v in built.items()},
        "loading": notes,
    }


def check(url: str, decisions: int) -> dict[str, Any]:
    """Counts, the verdict mix and the foreign keys of what was generated."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET statement_timeout = '900s'")
        conn.execute("SET work_mem = '512MB'")  # the anti-joins below hash 10 M rows

        def one(query: str) -> Any:
            row = conn.execute(query).fetchone()
            assert row is not None
            return row[0]

        counts = {t: int(one(f"SELECT count(*) FROM mandate.{t}")) for t in LOADED}  # noqa: S608
        mix = {
            str(r[0]): int(r[1])
            for r in conn.execute("SELECT verdict::text, count(*) FROM mandate.verdict_events GROUP BY 1").fetchall()
        }
        domains = {
            str(r[0]): int(r[1])
            for r in conn.execute("SELECT domain, count(*) FROM mandate.decision_events GROUP BY 1").fetchall()
        }
        orphans = {
            "verdicts without their decision stage": int(one(
                """SELECT count(*) FROM mandate.verdict_events v WHERE NOT EXISTS (SELECT 1 FROM
                   mandate.decision_events d WHERE d.decision_id = v.decision_id AND d.stage = v.stage)""")),
            "timeline entries without their decision stage": int(one(
                """SELECT count(*) FROM mandate.audit_timeline_entries t WHERE NOT EXISTS (SELECT 1 FROM
                   mandate.decision_events d WHERE d.decision_id = t.decision_id AND d.stage = t.decision_stage)""")),
            "PAUSE verdicts without their approval request": int(one(
                """SELECT count(*) FROM mandate.verdict_events v WHERE v.verdict = 'PAUSE' AND NOT EXISTS
                   (SELECT 1 FROM mandate.approval_requests a WHERE a.approval_id = v.verdict_id)""")),
            "resolutions without their request": int(one(
                """SELECT count(*) FROM mandate.approval_resolutions r WHERE NOT EXISTS
                   (SELECT 1 FROM mandate.approval_requests a WHERE a.approval_id = r.approval_id)""")),
        }  # fmt: skip
        actors = int(one("SELECT count(DISTINCT actor) FROM mandate.decision_events"))
        agents = int(one("SELECT count(DISTINCT scope->>'agent') FROM mandate.decision_events"))
    expected_entries = 2 * decisions  # plus one per resolution event
    ok = (
        counts["decision_events"] == decisions
        and counts["verdict_events"] == decisions
        and counts["audit_timeline_entries"] == expected_entries + counts["approval_resolutions"]
        and counts["approval_requests"] == mix.get("PAUSE", 0)
        and not any(orphans.values())
    )
    return {
        "counts": counts,
        "verdicts": mix,
        "domains": domains,
        "actors": actors,
        "agents": agents,
        "orphans": orphans,
        "ok": ok,
    }


def fold_rollups(url: str) -> dict[str, Any]:
    """Fold every loaded decision into the rollups (what the server does after migration 013, in the same chunks),
    before measuring: the catch-up of an upgraded database, timed."""
    from mandate.db.rollups import FOLD, FOLD_ROWS

    t0, folded, chunks = time.perf_counter(), 0, 0
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute(FOLD, [FOLD_ROWS]).fetchone()
            n = int(row[0]) if row else 0
            folded, chunks = folded + n, chunks + 1
            if n < FOLD_ROWS:
                break
        conn.execute("VACUUM ANALYZE mandate.decision_rollups")
        rows = conn.execute("SELECT count(*) FROM mandate.decision_rollups").fetchone()
    elapsed = time.perf_counter() - t0
    print(
        f"  rollups: {folded:,} stages folded in {chunks} chunks, {elapsed:.0f} s; {rows[0] if rows else 0:,} rows",
        flush=True,
    )
    return {"folded": folded, "chunks": chunks, "seconds": round(elapsed, 1), "rows": rows[0] if rows else 0}


def read_back(served: Served, url: str, count: int = 20) -> dict[str, Any]:
    """Generated decisions read through the API (`GET /api/decisions/{id}`: 200, the stored verdict) and their UI
    page (`GET /decisions/{id}`: 200), one of each verdict at least."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            """(SELECT DISTINCT ON (verdict) decision_id::text, verdict::text FROM mandate.verdict_events
                ORDER BY verdict, decision_id)
               UNION ALL
               (SELECT decision_id::text, verdict::text FROM mandate.verdict_events ORDER BY verdict_id LIMIT %s)""",
            [count],
        ).fetchall()
    problems = []
    with httpx.Client(base_url=served.base_url, timeout=60) as client:
        for decision_id, verdict in rows:
            r = client.get(f"/api/decisions/{decision_id}")
            if r.status_code != 200 or r.json().get("verdict") != verdict:
                problems.append(f"/api/decisions/{decision_id}: {r.status_code} {r.text[:200]}")
            page = client.get(f"/decisions/{decision_id}", params={"organization_id": ORGANIZATION_ID})
            if page.status_code != 200:
                problems.append(f"/decisions/{decision_id}: {page.status_code}")
    return {"read": len(rows), "problems": problems[:10], "ok": not problems and len(rows) > 0}


# -- the pages ---------------------------------------------------------------------------------------------------


@dataclass
class Kind:
    name: str
    path: str
    params: Callable[[random.Random], dict[str, str]]


def _choices(url: str, rng: random.Random, decisions: int) -> dict[str, Any]:
    """What the varied parameters are drawn from: each domain's policies, scopes, teams, actors; deep cursors."""
    from mandate.db.decisions import Cursor

    percent = min(100.0, 100.0 * 40_000 / max(decisions, 1))  # ~40,000 rows, whole pages of them
    with psycopg.connect(url, autocommit=True) as conn:
        per: dict[str, dict[str, list[str]]] = {}
        for domain in DOMAINS:
            policies = conn.execute(
                """SELECT DISTINCT p->>'id' FROM mandate.policy_snapshots s, jsonb_array_elements(s.policies) p
                   WHERE s.organization_id = %s AND s.domain = %s ORDER BY 1""",
                [ORGANIZATION_ID, domain],
            ).fetchall()
            scopes = conn.execute(
                "SELECT scope_id, owning_team FROM mandate.scopes WHERE organization_id = %s AND domain = %s",
                [ORGANIZATION_ID, domain],
            ).fetchall()
            actors = conn.execute(
                """SELECT DISTINCT actor FROM mandate.decision_events TABLESAMPLE SYSTEM (%s)
                   WHERE organization_id = %s AND domain = %s""",
                [percent, ORGANIZATION_ID, domain],
            ).fetchall()
            deep = conn.execute(
                """SELECT "timestamp", decision_id, stage::text FROM mandate.decision_events TABLESAMPLE SYSTEM (%s)
                   WHERE organization_id = %s AND domain = %s ORDER BY random() LIMIT 400""",
                [percent, ORGANIZATION_ID, domain],
            ).fetchall()
            per[domain] = {
                "policies": [str(p[0]) for p in policies],
                "scopes": [str(s[0]) for s in scopes],
                "teams": sorted({str(s[1]) for s in scopes if s[1]}),
                "actors": [str(a[0]) for a in actors] or ["agent"],
                "cursors": [Cursor(r[0], r[1], r[2]).encode() for r in deep],
            }
    return per


def kinds(choices: dict[str, Any]) -> list[Kind]:
    def place(rng: random.Random) -> dict[str, str]:
        return {"organization_id": ORGANIZATION_ID, "domain": rng.choice(DOMAINS)}

    def pick(key: str, param: str) -> Callable[[random.Random], dict[str, str]]:
        def params(rng: random.Random) -> dict[str, str]:
            p = place(rng)
            return {**p, param: rng.choice(choices[p["domain"]][key])}

        return params

    def actor_part(rng: random.Random) -> dict[str, str]:
        p = place(rng)
        actor = rng.choice(choices[p["domain"]]["actors"])
        return {**p, "actor": actor[: rng.randint(4, len(actor))].upper()}  # the start of it, any case

    def rare_target(rng: random.Random) -> dict[str, str]:
        return {**place(rng), "target": f"CUSTOMER:C{rng.randint(0, 999_999):06d}"}  # a customer's, any case

    def deep(rng: random.Random) -> dict[str, str]:
        p = place(rng)
        cursors = choices[p["domain"]]["cursors"]
        return {**p, "cursor": rng.choice(cursors)} if cursors else p

    def preset(name: str | None) -> Callable[[random.Random], dict[str, str]]:
        return lambda rng: {**place(rng), **({"range": name} if name else {})}

    return [
        Kind("decisions: domain", "/", place),
        Kind(
            "decisions: + verdict",
            "/",
            lambda rng: {**place(rng), "verdict": rng.choice(("ALLOW", "OBSERVE", "BLOCK", "PAUSE"))},
        ),
        Kind("decisions: + policy_id", "/", pick("policies", "policy_id")),
        Kind("decisions: + scope_id", "/", pick("scopes", "scope_id")),
        Kind("decisions: + owning_team", "/", pick("teams", "owning_team")),
        Kind("decisions: + actor (its start)", "/", actor_part),
        Kind("decisions: + target (a rare one, its start)", "/", rare_target),
        Kind("decisions: deep page (cursor)", "/", deep),
        Kind("overview: range=1h", "/overview", preset("1h")),
        Kind("overview: range=24h", "/overview", preset("24h")),
        Kind("overview: range=7d", "/overview", preset("7d")),
        Kind("overview: all time (default)", "/overview", preset(None)),
        Kind("approvals: pending queue", "/approvals", place),
    ]


def _access_ms(log: Path, offset: int, path: str, expected: int) -> tuple[list[float], int]:
    """The durations the server's access log recorded for `GET path` after byte `offset` (the time inside the app),
    once `expected` are there (≤ 5 s); and the new offset."""
    deadline = time.monotonic() + 5
    while True:
        with log.open("rb") as f:
            f.seek(offset)
            text = f.read()
        found = []
        for line in text.splitlines():
            if line.startswith(b'{"') and b"mandate.access" in line:
                x = json.loads(line)
                if x.get("path") == path and x.get("method") == "GET":
                    found.append(float(x["duration_ms"]))
        if len(found) >= expected or time.monotonic() > deadline:
            return found, offset + len(text)
        time.sleep(0.1)


def _round(s: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in s.items()}


def measure(served: Served, kinds_: list[Kind], requests: int, budget_s: float, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    with httpx.Client(base_url=served.base_url, timeout=120) as client:
        for kind in kinds_:
            offset = served.log.stat().st_size
            warm, w0 = 0, time.monotonic()
            while warm < 3 and (warm == 0 or time.monotonic() - w0 < 10):  # warm-up: connections, plans, caches
                client.get(kind.path, params=kind.params(rng)).raise_for_status()
                warm += 1
            _, offset = _access_ms(served.log, offset, kind.path, warm)  # past the warm-up's lines, once written
            latencies: list[float] = []
            asked: list[dict[str, str]] = []
            statuses: dict[str, int] = {}
            timed_out = 0
            started = time.monotonic()
            while len(latencies) < requests and (time.monotonic() - started < budget_s or len(latencies) < 3):
                params = kind.params(rng)
                t0 = time.perf_counter()
                r = client.get(kind.path, params=params)
                latencies.append((time.perf_counter() - t0) * 1000)
                asked.append(params)
                statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
                timed_out += TIMEOUT_NOTE in r.text
            server, _ = _access_ms(served.log, offset, kind.path, len(latencies))
            client_s, server_s = _round(summary(latencies)), _round(summary(server))
            result = {
                "kind": kind.name,
                "path": kind.path,
                "requests": len(latencies),
                "seconds": round(time.monotonic() - started, 1),
                "statuses": statuses,
                "aggregates_timed_out": timed_out,
                "client_ms": client_s,
                "server_ms": server_s,
                # The three slowest requests (client time) and what they asked: where a tail comes from.
                "slowest": [
                    {"client_ms": round(ms, 1), "params": p}
                    for ms, p in sorted(zip(latencies, asked, strict=True), key=lambda x: -x[0])[:3]
                ],
                "met": statuses == {"200": len(latencies)}
                and timed_out == 0
                and len(server) == len(latencies)
                and server_s["p99"] <= TARGET_MS,
            }
            out.append(result)
            print(
                f"  {kind.name:<36} n={len(latencies):<4} p50 {client_s['p50']:>9.1f} ms  p99 {client_s['p99']:>9.1f} ms"
                f"  server p99 {server_s.get('p99', float('nan')):>9.1f} ms"
                f"{f'  ({timed_out} with counts timed out)' if timed_out else ''}"
                f"  {'met' if result['met'] else 'NOT met'}",
                flush=True,
            )
            if not result["met"]:
                for slow in result["slowest"]:
                    print(f"    slow: {slow['client_ms']} ms {slow['params']}", flush=True)
    return out


def window_counts(url: str) -> dict[str, int]:
    """Decisions of each domain in the presets' windows now, and the pending approval requests."""
    with psycopg.connect(url, autocommit=True) as conn:
        out = {}
        for name, hours in (("1h", 1), ("24h", 24), ("7d", 168)):
            row = conn.execute(
                """SELECT count(*) FROM mandate.decision_events
                   WHERE "timestamp" >= now() - make_interval(hours => %s)""",
                [hours],
            ).fetchone()
            out[f"decisions in the last {name}"] = int(row[0]) if row else 0
        row = conn.execute(
            """SELECT count(*) FROM mandate.approval_requests a WHERE a.expires_at > now() AND NOT EXISTS
               (SELECT 1 FROM mandate.approval_resolutions r WHERE r.approval_id = a.approval_id)"""
        ).fetchone()
        out["pending approval requests"] = int(row[0]) if row else 0
    return out


# -- plans: the SQL behind a request, under EXPLAIN ANALYZE ------------------------------------------------------


class _Recording:
    """Stands in for the connection in the query functions: keeps each statement instead of sending it, and answers
    with no rows — except the time-span query, answered with the data's span, so the chart's query follows."""

    def __init__(self, span: tuple[datetime, datetime]) -> None:
        self.span = span
        self.calls: list[tuple[Any, Any]] = []
        self.last = ""

    async def execute(self, query: Any, params: Any = None) -> _Recording:
        self.last = query.as_string() if isinstance(query, sql.Composable) else str(query)
        head = self.last.lstrip().upper()
        settings = "set_config(" in self.last or head.startswith(("SET ", "EXPLAIN "))
        if not settings:  # the UI's statement timeout, time zone, snapshot and plan estimates are not queries
            self.calls.append((query, params))
        return self

    async def fetchall(self) -> list[Any]:
        return []

    async def fetchone(self) -> dict[str, Any] | None:
        return {"lo": self.span[0], "hi": self.span[1]} if " AS lo, " in self.last else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield


async def _page_queries(kind: Kind, params: dict[str, str], span: tuple[datetime, datetime]) -> list[tuple[Any, Any]]:
    """The statements one request of `kind` sends (after the organizations, domains and governance names)."""
    from uuid import UUID

    from mandate.db import approvals as aq
    from mandate.db import decisions as q
    from mandate.web import charts, overview, ui

    org, domain = UUID(params["organization_id"]), params["domain"]
    rec = _Recording(span)
    conn: Any = rec
    if kind.path == "/approvals":
        now = datetime.now(UTC)
        where: dict[str, Any] = {"organization_id": org, "domains": None, "domain": domain, "token_id": None}
        await aq.list_requests(conn, **where, state="pending", now=now, limit=ui.DEFAULT_LIMIT, cursor=None)
        await aq.count_requests(conn, **where, now=now)
        return rec.calls
    f = q.DecisionFilter(
        organization_id=org,
        domain=domain,
        verdict=params.get("verdict"),
        actor=params.get("actor"),
        target=params.get("target"),
        policy_id=params.get("policy_id"),
        scope_id=params.get("scope_id"),
        owning_team=params.get("owning_team"),
        partial=True,
    )
    if kind.path == "/overview":
        if "range" in params:
            until = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
            f = replace(f, since=until - overview.PRESETS[params["range"]], until=until)
        await charts._aggregates(conn, f, ui.UTC_CLOCK, tuple(by for by, _, _ in overview.BREAKDOWNS))
        return rec.calls
    cursor = q.Cursor.decode(params["cursor"]) if "cursor" in params else None
    await q.list_decisions(conn, f, limit=ui.DEFAULT_LIMIT, cursor=cursor)
    await charts._aggregates(conn, f, ui.UTC_CLOCK)
    return rec.calls


_EXECUTION = re.compile(r"Execution Time: ([0-9.]+) ms")


def _explain_one(conn: psycopg.Connection[Any], query: Any, args: Any) -> dict[str, Any]:
    statement = query if isinstance(query, sql.Composable) else sql.SQL(query)
    text = " ".join(statement.as_string(conn).split())
    try:
        rows = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + statement, args).fetchall()
    except psycopg.errors.QueryCanceled:
        return {"sql": text[:300], "execution_ms": None, "plan": f"(cancelled after {EXPLAIN_TIMEOUT_S} s)"}
    plan = "\n".join(str(x[0]) for x in rows)
    found = _EXECUTION.search(plan)
    return {"sql": text[:300], "execution_ms": float(found.group(1)) if found else None, "plan": plan}


def explain(
    url: str, kinds_: list[Kind], results: list[dict[str, Any]], budget_s: float, span: tuple[datetime, datetime]
) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of the statements behind one request of each kind (each cut off after
    EXPLAIN_TIMEOUT_S): first every kind's first statement (the list, or the first count), then the others, slowest
    kinds first, until `budget_s` is spent; a kind that missed the target is explained with its slowest request. Per kind: each statement's execution time; the plans of its first and
    its slowest statement."""
    by_name = {k.name: k for k in kinds_}
    slowest_first = [r["kind"] for r in sorted(results, key=lambda r: -r["server_ms"].get("p99", 0.0))]
    slowest_asked = {r["kind"]: r["slowest"][0]["params"] for r in results if not r["met"] and r.get("slowest")}
    rng = random.Random(11)
    recorded = {}
    for name in slowest_first:
        params = by_name[name].params(rng)
        params = slowest_asked.get(name, params)  # a kind that missed: the request that took longest
        recorded[name] = (params, asyncio.run(_page_queries(by_name[name], params, span)))
    order = [(name, 0) for name in slowest_first]
    order += [(name, i) for name in slowest_first for i in range(1, len(recorded[name][1]))]
    done: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in slowest_first}
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(f"{EXPLAIN_TIMEOUT_S}s")))
        conn.execute("SET TimeZone = 'UTC'")
        for name, i in order:
            if time.monotonic() - started > budget_s:
                break
            query, args = recorded[name][1][i]
            done[name][i] = _explain_one(conn, query, args)
    out: dict[str, Any] = {}
    for name in slowest_first:
        params, calls = recorded[name]
        statements = [done[name].get(i) for i in range(len(calls))]
        measured = [s for s in statements if s is not None]
        slowest = max(measured, key=lambda s: s["execution_ms"] or float("inf"), default=None)
        out[name] = {
            "params": params,
            "statements_ms": [
                (s["sql"][:120], s["execution_ms"])
                if s is not None
                else ("(not run: the plans' time budget was spent)", None)
                for s in statements
            ],
            "first_plan": statements[0]["plan"] if statements and statements[0] is not None else None,
            "slowest_sql": slowest["sql"] if slowest else None,
            "slowest_plan": slowest["plan"] if slowest else None,
        }
        print(
            f"  plans of {name}: " + ", ".join(f"{s['execution_ms']} ms" if s else "-" for s in statements), flush=True
        )
    return out


def sweeper(url: str) -> dict[str, Any]:
    """The approval sweeper's statement (db/approvals.py `SWEEP`, every 15 s in every worker while the pages are
    measured) under EXPLAIN ANALYZE, rolled back: a server's first round (every request) and a later one (only what
    expired or was stored since the round before, a minute back at most)."""
    from mandate.db import approvals as aq

    now = datetime.now(UTC)
    out: dict[str, Any] = {}
    for name, since in (("first round", None), ("later rounds", now - timedelta(minutes=1))):
        with psycopg.connect(url) as conn:
            conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(f"{EXPLAIN_TIMEOUT_S}s")))
            try:
                rows = conn.execute(
                    sql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + sql.SQL(aq.SWEEP),
                    {"now": now, "since": since, "limit": aq.SWEEP_BATCH},
                ).fetchall()
            except psycopg.errors.QueryCanceled:
                out[name] = {"execution_ms": None, "plan": f"(> {EXPLAIN_TIMEOUT_S} s)"}
                continue
            finally:
                conn.rollback()
        plan = "\n".join(str(r[0]) for r in rows)
        found = _EXECUTION.search(plan)
        print(f"  the approval sweeper's statement, {name}: {found.group(1) if found else '?'} ms", flush=True)
        out[name] = {"execution_ms": float(found.group(1)) if found else None, "plan": plan}
    return out


# -- partial text: any part (what the UI does) against a prefix on an index -------------------------------------


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def text_search(url: str, choices: dict[str, Any], count: int = 3, seed: int = 13) -> dict[str, Any]:
    """The list's query with a partial-text filter (its verdicts aside), by EXPLAIN ANALYZE: any part in any case
    (`ILIKE '%x%'`, what the UI sends: no index serves it, the domain's rows are read newest first until a page is
    found), against a prefix of the lower-cased value (`lower(col) LIKE 'x%'`) before and after a btree index
    `(organization_id, domain, lower(col) text_pattern_ops)` built for the experiment (and dropped). A trigram index
    (pg_trgm, which serves '%x%') cannot be measured here: the embedded PostgreSQL has no contrib extensions."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        number = f"{rng.randint(0, 999_999):06d}"
        cases.append(("target, a customer number", "target", DOMAINS[1], f"C{number}", f"customer:c{number}"))
    for _ in range(count):
        domain = rng.choice(DOMAINS)
        actor = rng.choice(choices[domain]["actors"])
        cases.append(("actor, an actor's part", "actor", domain, actor[3:-1], actor[:-1].lower()))

    def run(conn: psycopg.Connection[Any], column: str, domain: str, condition: str, value: str) -> float | None:
        query = sql.SQL(
            """EXPLAIN (ANALYZE) SELECT d.decision_id FROM mandate.decision_events d
               WHERE d.organization_id = %s AND d.domain = %s AND {condition}
               ORDER BY d."timestamp" DESC, d.decision_id DESC, d.stage DESC LIMIT 51"""
        ).format(condition=sql.SQL(condition).format(column=sql.Identifier("d", column)))
        try:
            plan = "\n".join(str(r[0]) for r in conn.execute(query, [ORGANIZATION_ID, domain, value]).fetchall())
        except psycopg.errors.QueryCanceled:
            return None
        found = _EXECUTION.search(plan)
        return float(found.group(1)) if found else None

    contains, prefix = "{column} ILIKE %s", "lower({column}) LIKE %s"
    out: dict[str, Any] = {"cases": [], "index_build_s": {}}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(f"{EXPLAIN_TIMEOUT_S}s")))
        for label, column, domain, part, start in cases:
            out["cases"].append({
                "case": label, "domain": domain, "any_part": part, "prefix": start,
                "any_part_ms": run(conn, column, domain, contains, f"%{_escaped(part)}%"),
                "prefix_without_index_ms": run(conn, column, domain, prefix, f"{_escaped(start)}%"),
            })  # fmt: skip
        conn.execute("SET statement_timeout = 0")
        conn.execute("SET maintenance_work_mem = '1GB'")
        for column in ("target", "actor"):
            t0 = time.perf_counter()
            conn.execute(
                sql.SQL("CREATE INDEX {} ON mandate.decision_events (organization_id, domain, lower({}) text_pattern_ops)")
                .format(sql.Identifier(f"bench_ui_prefix_{column}"), sql.Identifier(column))
            )  # fmt: skip
            out["index_build_s"][column] = round(time.perf_counter() - t0, 1)
        conn.execute("ANALYZE mandate.decision_events")
        conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(f"{EXPLAIN_TIMEOUT_S}s")))
        for case, (_, column, domain, _, start) in zip(out["cases"], cases, strict=True):
            case["prefix_with_index_ms"] = run(conn, column, domain, prefix, f"{_escaped(start)}%")
        for column in ("target", "actor"):
            conn.execute(sql.SQL("DROP INDEX mandate.{}").format(sql.Identifier(f"bench_ui_prefix_{column}")))
    for c in out["cases"]:
        print(
            f"  {c['case']:<28} any part {c['any_part_ms']} ms; prefix {c['prefix_without_index_ms']} ms,"
            f" with an index {c['prefix_with_index_ms']} ms",
            flush=True,
        )
    return out


# -- the run -----------------------------------------------------------------------------------------------------


def _committed_code(work: Path) -> dict[str, Any]:
    """The server runs the committed code (HEAD's src/ and migrations/, exported), so that edits in progress in the
    working tree neither change nor break a long run; what the working tree had besides is recorded."""
    root = Path(__file__).resolve().parent.parent
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
    changed = subprocess.run(
        ["git", "status", "--short", "--", "src", "migrations"], cwd=root, capture_output=True, text=True, check=True
    )
    target = work / "head"
    target.mkdir()
    archive = subprocess.run(
        ["git", "archive", "HEAD", "src", "migrations"], cwd=root, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return {
        "commit": head.stdout.strip(),
        "pythonpath": str(target / "src"),
        "working_tree_changes_not_served": changed.stdout.split("\n")[:-1],
    }


def run(
    decisions: int, requests: int, budget_s: float, plans_s: float, days: float, chunk: int, out: Path
) -> dict[str, Any]:
    results: dict[str, Any] = {"decisions": decisions, "target_ms": TARGET_MS, "workers": WORKERS}
    results["machine"] = machine_facts()
    tmp_base = os.environ.get("MANDATE_BENCH_TMP") or None
    with postgres.server() as server, tempfile.TemporaryDirectory(prefix="mandate-bench-ui-", dir=tmp_base) as tmp:
        work = Path(tmp)
        results["postgres"] = server.facts()
        code = _committed_code(work)
        results["server_code"] = code
        database, url = prepare_database(server)
        try:
            print(f"generating {decisions:,} decisions", flush=True)
            results["load"] = generate(server, url, decisions, days, chunk)
            t = results["load"]["timings_s"]
            print(f"  loaded in {t['load_s']:.0f} s ({decisions / max(t['load_s'], 1e-9):,.0f} decisions/s)")
            results["check"] = check(url, decisions)
            results["sizes_bytes"] = sizes(url)
            results["database_bytes"] = results["sizes_bytes"]["(database)"]
            print(
                f"  {results['check']['counts']}; verdicts {results['check']['verdicts']};"
                f" {results['database_bytes'] / 1e9:.1f} GB; ok={results['check']['ok']}",
                flush=True,
            )
            results["rollups"] = fold_rollups(url)
            with serve(url, work, pythonpath=code["pythonpath"]) as served:
                try:
                    results["read_back"] = read_back(served, url)
                    print(f"  read back through the API: {results['read_back']}", flush=True)
                    rng = random.Random(5)
                    choices = _choices(url, rng, decisions)
                    kinds_ = kinds(choices)
                    results["windows"] = window_counts(url)
                    print(f"  now: {results['windows']}", flush=True)
                    results["pages"] = measure(served, kinds_, requests, budget_s)
                except Exception:
                    print(f"the server's log ends:\n{served.log.read_text()[-4000:]}", file=sys.stderr)
                    raise
            partial = out.with_name(out.stem + ".partial.json")
            partial.write_text(json.dumps(results, indent=2, default=str) + "\n")  # in case the rest is cut off
            span = (
                datetime.fromisoformat(results["load"]["span"][0]),
                datetime.fromisoformat(results["load"]["span"][1]),
            )
            results["plans"] = explain(url, kinds_, results["pages"], plans_s, span)
            partial.write_text(json.dumps(results, indent=2, default=str) + "\n")
            results["sweeper"] = sweeper(url)
            results["text_search"] = text_search(url, choices)
            partial.unlink()
        finally:
            server.drop(database)
    results["met"] = all(p["met"] for p in results["pages"])
    results["ok"] = results["check"]["ok"] and results["read_back"]["ok"]
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        "| page | requests | p50 (ms) | p99 client (ms) | p99 server (ms) | counts timed out | p99 ≤ 200 ms? |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for p in results["pages"]:
        lines.append(
            f"| {p['kind']} | {p['requests']} | {p['client_ms']['p50']:,.1f} | {p['client_ms']['p99']:,.1f} |"
            f" {p['server_ms'].get('p99', float('nan')):,.1f} | {p['aggregates_timed_out']} |"
            f" {'yes' if p['met'] else '**no**'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--decisions", type=int, default=10_000_000, help="decisions to generate")
    parser.add_argument("--requests", type=int, default=200, help="requests per page kind (within --budget)")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per page kind (at least 3 requests)")
    parser.add_argument("--plans", type=float, default=300.0, help="seconds for the EXPLAIN ANALYZE plans")
    parser.add_argument("--days", type=float, default=90.0, help="the history's span, up to the load's start")
    parser.add_argument("--chunk", type=int, default=CHUNK, help="decisions per INSERT … SELECT")
    parser.add_argument("--quick", action="store_true", help="tiny: 20,000 decisions, 10 requests per kind")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results") / "ui.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.decisions, args.requests, args.budget, args.plans = 20_000, 10, 10.0, 30.0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = run(args.decisions, args.requests, args.budget, args.plans, args.days, args.chunk, args.out)
    results["command"] = "python -m bench.ui " + " ".join(argv if argv is not None else sys.argv[1:])
    print(table(results))
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results: {args.out}")
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
