"""Facts about the machine a run measured: CPU, cores, memory, operating system, Python and library versions."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("mandate-control-plane", "fastapi", "uvicorn", "psycopg", "psycopg-pool", "orjson", "pydantic", "cedarpy")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def facts() -> dict[str, object]:
    load1, load5, _ = os.getloadavg()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(_memory_gib(), 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "load_average_at_start": f"{load1:.2f} / {load5:.2f} (1 / 5 min)",
        "packages": {name: _version(name) for name in PACKAGES},
    }


def standalone_parser(doc: str, results: Path, quick: str = "tiny") -> argparse.ArgumentParser:
    """The command line every standalone benchmark (`python -m bench.<name>`) starts from: `--quick` (a smoke run,
    its results written only with `--out`) and `--out` (default `results`); `doc` is the module's docstring."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{quick}; results written only with --out")
    parser.add_argument("--out", type=Path, default=None, help=f"where the results go (default {results})")
    return parser


def record(results: dict[str, Any], out: Path | None, started: float) -> None:
    """Stamp a standalone benchmark's `results` with its duration (since `started`, `time.perf_counter()`) and end
    time, and write them as JSON to `out` (nothing written when None)."""
    results["duration_s"] = round(time.perf_counter() - started, 1)
    results["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n")
        print(f"results: {out}")
