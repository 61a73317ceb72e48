"""Acceptance of issue 12 on a legacy corpus at scale: every shape of LEGACY-SCHEMA.md, ≥ 50,000 decisions.

    python scripts/legacy_corpus_acceptance.py postgresql://postgres@127.0.0.1:5432/postgres [--decisions 50000]
        [--estimate-only]

On the server of the given (admin) URL it builds a legacy database (the original schema 001–007, no
migration_log) with legacy_data.build_corpus, then, each on a TEMPLATE copy of it:

1. `mandate migrate run 008 --yes` with the remedies the gate asks for: completes to head, smoke 4/4, every row and
   its content kept (counts and checksums per table), `mandate serve` starts and answers;
2. the same run killed with SIGKILL at each phase (gate, backup, 008 phases, 009/010, verification, after COMMIT):
   the database is then either unchanged or at head, and a re-run completes;
3. the checklist's literal psql commands (`psql -d … < migrations/008_….sql`) followed by `mandate migrate up`.

Before 1., two pre-flights of the copy give two runtime estimates: they must agree within ±20 %, and the run's
estimate must be within ±30 % of its measured migration transaction. `--estimate-only` stops after 1.

It prints one line per check and exits 1 if any failed. It creates databases prefixed `m12_acceptance_` and drops
them at the end; it ends only the processes it started.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from psycopg import sql

from mandate.db import tools
from mandate.migrate import baseline, preflight, runner
from mandate.migrate.files import migrations_dir

# The legacy corpus is a test fixture (tests/legacy_data.py), not part of the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests import legacy_data

PREFIX = "m12_acceptance_"
KILL_POINTS = (
    "── pre-migration checks",
    "pg_dump -Fc into",
    "008 phase 1/10",
    "008 phase 5/10",
    "008 phase 9/10",
    "008 phase 10/10",
    "applying 010_",
    "── post-verification",
    "the migration transaction took",  # right after COMMIT
)
failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"{'PASS' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        failures.append(what)


def url_of(admin: str, name: str) -> str:
    return urlunsplit(urlsplit(admin)._replace(path="/" + name))


def create(admin: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(query)
        conn.execute(sql.SQL("ALTER DATABASE {} SET search_path = mandate, public").format(sql.Identifier(name)))
    return url_of(admin, name)


def capture(url: str) -> dict[str, baseline.TableState]:
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction(force_rollback=True):
        return baseline.capture(conn)


def state(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        st = runner.status(conn)
    return "legacy" if st.state == "legacy" else ("head" if not st.pending else f"at {st.current_version:03d}")


def remedy_args() -> list[str]:
    r = legacy_data.corpus_remedies()
    args = ["--unattributed-to", r["unattributed_to"]]
    for slug in r["domain_slug"]:
        args += ["--domain-slug", slug]
    return args


class Run:
    """`mandate migrate run 008 …` in a session of its own, its output read line by line."""

    def __init__(self, url: str, work: Path, *extra: str) -> None:
        env = {**os.environ, "DATABASE_URL": url, "MANDATE_DATA_DIR": str(work / "data")}
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "mandate", "migrate", "run", "008", "--yes"),
                *("--backup-dir", str(work / "b")),
                *remedy_args(),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.q.put(line)
        self.q.put(None)

    def wait_for(self, text: str, timeout: float = 600) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.q.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                return False
            self.lines.append(line)
            if text in line:
                return True
        return False

    def finish(self, timeout: float = 900) -> int:
        code = self.proc.wait(timeout=timeout)
        while (line := self.q.get(timeout=10)) is not None:
            self.lines.append(line)
        return code

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)


def wait_gone(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(1200):
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mandate migrate run 008'"
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(0.05)


def served(url: str) -> bool:
    port = 39000 + os.getpid() % 1000
    proc = subprocess.Popen(
        [sys.executable, "-m", "mandate", "serve", "--port", str(port), "--insecure-no-auth"],  # loopback
        env={**os.environ, "DATABASE_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            if proc.poll() is not None:
                return False
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).json().get("status") == "ok":
                    # Several organizations: the API asks which one (the smoke tests do the same).
                    org = legacy_data.EXAMPLE_ORG_ID
                    listed = httpx.get(f"http://127.0.0.1:{port}/api/decisions?organization_id={org}", timeout=10)
                    return listed.status_code == 200
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        return False
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("admin_url")
    parser.add_argument("--decisions", type=int, default=50_000)
    parser.add_argument("--estimate-only", action="store_true", help="only the runbook to head and its estimate")
    args = parser.parse_args()
    admin: str = args.admin_url
    work = Path(tempfile.mkdtemp(prefix="m12-acceptance-"))
    source = f"{PREFIX}source"
    made: list[str] = [source]
    try:
        url = create(admin, source)
        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            runner.Runner(conn).up(to=7)
            conn.execute("DROP TABLE mandate.migration_log")
            with conn.transaction():
                counts = legacy_data.build_corpus(conn, decisions=args.decisions)
            conn.execute("VACUUM ANALYZE")
        print(f"corpus built in {time.perf_counter() - started:.1f} s: {json.dumps(counts)}", flush=True)
        check(counts["decision_events"] >= args.decisions, f"≥ {args.decisions} decisions")
        before = capture(url)

        # 1. The default runbook to head.
        name = f"{PREFIX}run"
        made.append(name)
        copy = create(admin, name, source)
        with psycopg.connect(copy, autocommit=True) as conn:
            two = []
            for _ in range(2):
                found = preflight.run(conn, backup_dir=None, allow_connections=True, needs_backup=False, settle_s=0)
                two.append(found.estimate.migration_s if found.estimate else 0.0)
        print(f"     two pre-flights estimate {two[0]:.1f} s and {two[1]:.1f} s", flush=True)
        check(abs(two[0] - two[1]) <= 0.2 * min(two), "two pre-flights' estimates within ±20 % of each other")
        run = Run(copy, work / "run")
        code = run.finish()
        report = json.loads(Path(_report_path(run.lines)).with_suffix(".json").read_text())
        check(code == 0 and report["outcome"] == "succeeded", f"runbook to head (exit {code})")
        check(state(copy) == "head", "the database is at head")
        check(baseline.compare(before, capture(copy)) == [], "every row and its content kept (counts, checksums)")
        smoke = report.get("smoke") or {}
        check(bool(smoke.get("passed")) and len(smoke.get("tests") or []) == 4, "smoke 4/4")
        est, actual = report["estimate"]["migration_s"], report["actual"]["migration_s"]
        print(f"     estimate {est:.1f} s, measured migration transaction {actual:.1f} s", flush=True)
        phases = {str(p["number"]): p["duration_s"] for p in report["phases"]}
        print(
            "     008 phases, estimate/measured (s): "
            + ", ".join(f"{n} {e:.2f}/{phases.get(n, 0):.2f}" for n, e in report["estimate"]["phases"].items()),
            flush=True,
        )
        print("     steps (s): " + ", ".join(f"{s['name']} {s['duration_s']:.2f}" for s in report["steps"]), flush=True)
        check(
            abs(est - actual) <= 0.3 * actual, f"estimate within ±30 % of the measured time ({est / actual - 1:+.0%})"
        )
        check(served(copy), "mandate serve starts and answers on the result")
        if args.estimate_only:
            print(f"{len(failures)} failure(s)" if failures else "every check passed", flush=True)
            return 1 if failures else 0

        # 2. kill -9 at each phase, then re-run.
        for n, point in enumerate(KILL_POINTS):
            name = f"{PREFIX}kill{n}"
            made.append(name)
            copy = create(admin, name, source)
            killed = Run(copy, work / f"kill{n}")
            reached = killed.wait_for(point)
            killed.kill()
            wait_gone(copy)
            after = state(copy)
            unchanged = after == "legacy" and baseline.compare(before, capture(copy)) == []
            at_head = after == "head" and baseline.compare(before, capture(copy)) == []
            check(reached and (unchanged or at_head), f"kill -9 at {point!r}: {after}, rows and content kept")
            again = Run(copy, work / f"kill{n}")
            check(again.finish() == 0 and state(copy) == "head", f"  re-run after the kill at {point!r} completes")

        # 3. The checklist's literal psql commands, then mandate migrate up.
        name = f"{PREFIX}psql"
        made.append(name)
        copy = create(admin, name, source)
        with psycopg.connect(copy) as conn:
            major = conn.info.server_version // 10000
        psql = str(tools.find("psql", major).path)
        r = legacy_data.corpus_remedies()
        slugs = [s.split("=") for s in r["domain_slug"]]
        rows = "".join(
            "INSERT INTO mandate.migration_008_domain_slugs VALUES ({}, '{}', '{}');".format(  # noqa: S608 - corpus constants
                f"'{name_.split(':')[0]}'" if ":" in name_ else "NULL", name_.split(":")[-1], slug
            )
            for name_, slug in slugs
        )
        org, domain = r["unattributed_to"].split("/")
        setup = (
            "CREATE TABLE mandate.migration_008_domain_slugs (organization_id uuid, name text NOT NULL, slug text "  # noqa: S608 - corpus constants
            "NOT NULL); CREATE TABLE mandate.migration_008_unattributed (organization_id uuid NOT NULL, domain text "
            f"NOT NULL); {rows} INSERT INTO mandate.migration_008_unattributed VALUES ('{org}', '{domain}');"
        )
        ok = subprocess.run([psql, "-X", "-d", copy, "-v", "ON_ERROR_STOP=1", "-c", setup], check=False).returncode
        files = migrations_dir()
        for script in ("008_PRE_MIGRATION_CHECKS.sql", "008_rfc002_domain_identity_migration.sql"):
            with (files / script).open() as stdin:
                ok |= subprocess.run(
                    [psql, "-X", "-d", copy], stdin=stdin, stdout=subprocess.DEVNULL, check=False
                ).returncode
        up = subprocess.run(
            [sys.executable, "-m", "mandate", "migrate", "up"], env={**os.environ, "DATABASE_URL": copy}, check=False
        )
        check(ok == 0 and up.returncode == 0 and state(copy) == "head", "psql < 008 files, then mandate migrate up")
        check(baseline.compare(before, capture(copy)) == [], "  every row and its content kept")
    finally:
        for name in made:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    print(f"{len(failures)} failure(s)" if failures else "every check passed", flush=True)
    return 1 if failures else 0


def _report_path(lines: list[str]) -> str:
    marker = "report in "
    for line in lines:
        if marker in line:
            return line.split(marker, 1)[1].strip()
    return ""


if __name__ == "__main__":
    sys.exit(main())
