"""`python -m bench {ingest,evaluator,migration,reads,memory,shadow,variants,all,report} [--quick]`: run benchmarks.

Full runs write `bench/results/results.json` and rewrite `docs/benchmarks.md` and `docs/images/bench-*.png` from it
(every section that has results; a benchmark run alone replaces only its own section). `--quick` runs everything
tiny (a CI smoke test: nothing about speed is asserted) and writes into `--out` (default: a temporary directory),
never into docs/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs"
NAMES = ("evaluator", "ingest", "memory", "migration", "reads", "shadow")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "benchmark",
        help=f"one of {', '.join([*NAMES, 'variants', 'profile', 'all', 'report'])}, or several joined by commas",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes and durations (CI smoke test)")
    parser.add_argument("--out", type=Path, help="where results (and, with --quick, the report) go")
    parser.add_argument(
        "--sizes", help="decision counts for the migration benchmark, comma-separated (default 1000000)"
    )
    parser.add_argument("--minutes", type=float, help="duration of the memory benchmark (default 10)")
    parser.add_argument("--profile", action="store_true", help="sample the server with py-spy during ingestion")
    parser.add_argument(
        "--variants", action="store_true", help="also measure the server variants of bench/variants.py (ingest)"
    )
    parser.add_argument("--keep-work", action="store_true", help="keep the temporary work directory")
    return parser


def _load(path: Path) -> dict[str, Any]:
    if path.is_file():
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded
    return {}


def _merge(recorded: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
    """`recorded` with the sections of this run replacing its own; migration sizes merge by decision count."""
    merged = {**recorded, **fresh}
    merged["commands"] = {**recorded.get("commands", {}), **fresh.get("commands", {})}
    if set(fresh.get("ingest", {})) == {"profile"}:  # `profile` alone refreshes only the profile of ingest
        merged["ingest"] = {**recorded.get("ingest", {}), **fresh["ingest"]}
    old, new = recorded.get("migration"), fresh.get("migration")
    if old and new and not old.get("quick") and not new.get("quick"):
        by_size = {m["decisions"]: m for m in old.get("sizes", [])} | {m["decisions"]: m for m in new["sizes"]}
        merged["migration"] = {**new, "sizes": [by_size[n] for n in sorted(by_size)]}
        sizes = ",".join(str(n) for n in sorted(by_size))
        merged["commands"]["migration"] = f"python -m bench migration --sizes {sizes}"
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    chosen = args.benchmark.split(",")
    unknown = [c for c in chosen if c not in (*NAMES, "variants", "profile", "all", "report")]
    if unknown or (len(chosen) > 1 and ({"all", "report"} & set(chosen))):
        parser.error(f"unknown or unmixable benchmark(s): {args.benchmark}")
    out: Path = args.out or (Path(tempfile.gettempdir()) / "mandate-bench-quick" if args.quick else RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    docs = out if args.quick or args.out else DOCS
    if args.benchmark == "report":
        from bench import report

        report.write(_load(results_path), docs)
        print(f"wrote {docs / 'benchmarks.md'}")
        return 0

    from bench import machine

    results: dict[str, Any] = {"machine": machine.facts()}
    results["quick"] = args.quick
    names = NAMES if args.benchmark == "all" else tuple(chosen)
    if args.benchmark == "all" and not args.quick:  # the full record includes the profile and the experiments
        args.profile = args.variants = True
    commands = results.setdefault("commands", {})
    command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    work = Path(tempfile.mkdtemp(prefix="mandate-bench-work-"))
    started = time.perf_counter()
    try:
        _run(names, args, work, results, commands, command)
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["duration_s"] = round(time.perf_counter() - started, 1)
    # Read the record again only now, so that runs of other benchmarks that finished meanwhile are kept.
    results = _merge(_load(results_path) if not args.quick else {}, results)
    results_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    from bench import report

    report.write(results, docs)
    print(f"results: {results_path}\nreport: {docs / 'benchmarks.md'} ({results['duration_s']} s)")
    return 0


def _run(
    names: tuple[str, ...], args: argparse.Namespace, work: Path, results: dict[str, Any], commands: dict[str, str],
    command: str,
) -> None:  # fmt: skip
    from bench import evaluator, ingest, memory, migration, postgres, reads, shadow

    if "evaluator" in names:
        print("== evaluator", flush=True)
        results["evaluator"] = evaluator.run(args.quick)
        commands["evaluator"] = command
    db_names = [n for n in names if n != "evaluator"]
    if not db_names:
        return
    with postgres.server() as server:
        results["postgres"] = server.facts()
        if "ingest" in names:
            print("== ingest", flush=True)
            results["ingest"] = ingest.run(server, args.quick, work, profile=args.profile)
            commands["ingest"] = command
            if args.profile:
                commands["ingest profile"] = command
        if "profile" in names and "ingest" not in names:
            print("== ingest: profile", flush=True)
            results.setdefault("ingest", {})["profile"] = ingest.profile_only(server, args.quick, work)
            commands["ingest profile"] = command
        if ("ingest" in names and args.variants) or "variants" in names:
            print("== ingest: server variants", flush=True)
            results["ingest_variants"] = ingest.variants(server, args.quick, work)
            commands["ingest variants"] = command
        if "shadow" in names:
            print("== shadow", flush=True)
            results["shadow"] = shadow.run(server, args.quick, work)
            commands["shadow"] = command
        if "memory" in names:
            print("== memory", flush=True)
            results["memory"] = memory.run(server, args.quick, work, args.minutes)
            commands["memory"] = command
        migrated = None
        if "migration" in names or "reads" in names:
            sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else None
            if "migration" not in names:  # reads alone: build (and migrate) the database it reads
                sizes = sizes or (migration.QUICK_SIZES if args.quick else migration.SIZES)
            print("== migration", flush=True)
            m = migration.run(server, args.quick, work, sizes)
            if "migration" in names:
                results["migration"] = m
                commands["migration"] = command
            migrated = m["sizes"][-1]["database"]
        if "reads" in names and migrated:
            print("== reads", flush=True)
            try:
                results["reads"] = reads.run(server.url(migrated), args.quick, work)
            finally:
                server.drop(migrated)
            commands["reads"] = command
        elif migrated:
            server.drop(migrated)


if __name__ == "__main__":
    raise SystemExit(main())
