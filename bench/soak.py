"""The soak (not in CI): `mandate serve` for N minutes at 80 % of its measured peak — zero errors, every
acknowledged decision stored whole, p99 latency and RSS flat. Writes its result as JSON and a plot.

    python -m bench.soak --minutes 10 [--workers 1] [--connections 8] [--soak-connections 32] [--share 0.8] \
        [--json bench/results/soak.json] [--plot docs/images/soak.png]

It runs on a PostgreSQL of its own (an embedded one in a temporary directory, bench/faults.py), measures the peak
with `--connections` clients sending as fast as the server answers for `--peak-seconds`, then sends at `--share` of
that rate, and every `--window` seconds records the window's answers, p50/p99 latency and the server's RSS (its
process and worker processes). "Flat": the least-squares slope over the run, and the last third against the
first third. The load generator runs on the same machine (and competes for the same cores): the peak is the
peak of that setup. Like the SDK, a client sends a decision again (same decision_id) when the connection fails
before an answer (at most twice); such retries are counted apart ("transport_errors_retried"), and an error is a
request that got no 201 after them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # psutil ships no type information

from bench.faults import Load, own_postgres, served, stored
from bench.memory import slope_mb_per_min
from bench.stats import percentile


def rss_mb(pid: int) -> float:
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return float(total) / 1e6


def measure_peak(url: str, token: str, connections: int, seconds: float) -> float:
    with Load(url, token, connections=connections) as load:
        time.sleep(2)  # warm-up, not counted
        start, count0 = time.monotonic(), len(load.answers)
        time.sleep(seconds)
        count = len(load.answers) - count0
        elapsed = time.monotonic() - start
    errors = [a for a in load.answers if a.status != 201]
    if errors:
        raise SystemExit(f"the peak measurement saw {len(errors)} errors: {errors[:3]}")
    return count / elapsed


def soak(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="mandate-soak-"))
    with own_postgres() as pg:
        token = pg.token()
        options = ["--workers", str(args.workers)]
        with served(pg.url, work / "serve.log", *options) as server:
            peak = measure_peak(server.url, token, args.connections, args.peak_seconds)
            rate = peak * args.share
            print(f"peak {peak:.0f} decisions/s; soaking at {rate:.0f}/s for {args.minutes} min", flush=True)
            windows: list[dict[str, Any]] = []
            # More clients than the peak needed: each waits for its answer, so at a fixed rate the clients must
            # outnumber rate × latency, or a slow answer would lower the rate instead of showing in the latency.
            soakers = args.soak_connections
            with Load(server.url, token, connections=soakers, rate=rate, seed=args.seed, retries=2) as load:
                started = time.monotonic()
                seen = 0
                end = started + args.minutes * 60
                while time.monotonic() < end:
                    time.sleep(min(args.window, max(0.0, end - time.monotonic())))
                    now = time.monotonic()
                    batch = load.answers[seen:]
                    seen += len(batch)
                    latencies = sorted(a.latency * 1000 for a in batch)
                    windows.append(
                        {
                            "t_s": round(now - started, 1),
                            "answers": len(batch),
                            "rate": round(len(batch) / args.window, 1),
                            "errors": sum(1 for a in batch if a.status != 201),
                            "p50_ms": round(percentile(latencies, 50), 2) if latencies else None,
                            "p99_ms": round(percentile(latencies, 99), 2) if latencies else None,
                            "rss_mb": round(rss_mb(server.process.pid), 1),
                        }
                    )
                    print(json.dumps(windows[-1]), flush=True)
            answers = load.answers
        acked = {a.decision_id for a in answers if a.status == 201}
        found = stored(pg.url, {a.decision_id for a in answers})
    errors = [a for a in answers if a.status != 201]
    steady = windows[1:]  # the first window holds the start of the rate
    third = max(1, len(steady) // 3)
    p99 = [w["p99_ms"] for w in steady if w["p99_ms"] is not None]
    rss = [(w["t_s"], w["rss_mb"]) for w in steady]
    result: dict[str, Any] = {
        "minutes": args.minutes,
        "workers": args.workers,
        "connections_peak": args.connections,
        "connections_soak": args.soak_connections,
        "peak_per_s": round(peak, 1),
        "target_per_s": round(rate, 1),
        "achieved_per_s": round(len(answers) / (args.minutes * 60), 1),
        "requests": len(answers),
        "errors": len(errors),
        "error_kinds": sorted({str(a.status or a.error) for a in errors}),
        "error_times_s": [round(a.started - started, 1) for a in errors],
        "transport_errors_retried": sorted(e for a in answers for e in a.retried),
        "transport_errors_retried_times_s": [round(a.started - started, 1) for a in answers if a.retried],
        "acknowledged": len(acked),
        "stored_whole": len(found.whole & acked),
        "stored_not_acknowledged": len(found.ids - acked),
        "acknowledged_equals_stored": acked == found.whole == found.ids,
        "p99_ms_first_third": round(sorted(p99[:third])[len(p99[:third]) // 2], 2),
        "p99_ms_last_third": round(sorted(p99[-third:])[len(p99[-third:]) // 2], 2),
        "p99_ms_max_window": max(p99),
        "rss_mb_start": rss[0][1],
        "rss_mb_end": rss[-1][1],
        "rss_slope_mb_per_min": round(slope_mb_per_min([(t, m) for t, m in rss]), 3),
        "windows": windows,
    }
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    windows = result["windows"]
    t = [w["t_s"] / 60 for w in windows]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    ax1.plot(t, [w["rate"] for w in windows], color="tab:blue")
    ax1.axhline(result["target_per_s"], color="grey", linestyle="--", linewidth=0.8, label="target (80 % of peak)")
    ax1.plot([], [], color="tab:blue", label="achieved")
    ax1.set_ylabel("decisions/s")
    ax1.set_ylim(bottom=0)
    ax1.legend(loc="lower right")
    ax2.plot(t, [w["p99_ms"] for w in windows], color="tab:red", label="p99")
    ax2.plot(t, [w["p50_ms"] for w in windows], color="tab:orange", label="p50")
    ax2.set_ylabel("latency (ms)")
    ax2.set_ylim(bottom=0)
    ax2.legend(loc="upper right")
    ax3.plot(t, [w["rss_mb"] for w in windows], color="tab:green")
    ax3.set_ylabel("server RSS (MB)")
    ax3.set_ylim(0, max(w["rss_mb"] for w in windows) * 1.3)
    ax3.set_xlabel("minutes")
    fig.suptitle(
        f"Soak: {result['minutes']:g} min, target {result['target_per_s']:.0f}/s (80 % of a peak of "
        f"{result['peak_per_s']:.0f}/s), achieved {result['achieved_per_s']:.0f}/s\n"
        f"{result['requests']} requests, {result['errors']} errors, acknowledged = stored: "
        f"{'yes' if result['acknowledged_equals_stored'] else 'NO'}",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--soak-connections", type=int, default=32, help="clients during the soak (default 32)")
    parser.add_argument("--share", type=float, default=0.8, help="of the measured peak (default 0.8)")
    parser.add_argument("--peak-seconds", type=float, default=20.0)
    parser.add_argument("--window", type=float, default=10.0, help="seconds per sample")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    parser.add_argument("--plot", type=Path, default=None, help="write the plot here (PNG)")
    args = parser.parse_args(argv)
    result = soak(args)
    summary = {k: v for k, v in result.items() if k != "windows"}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.plot:
        plot(result, args.plot)
    ok = result["errors"] == 0 and result["acknowledged_equals_stored"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
