"""A `mandate serve` process for a benchmark: started on a free loopback port, watched (RSS, CPU of the process and
its worker processes), stopped by PID. Benchmarks run it with one worker process per core (`WORKERS`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

WORKERS = os.cpu_count() or 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def serve(
    database_url: str,
    work: Path,
    *,
    startup_s: float = 60.0,
    variant: str | None = None,
    pythonpath: str = "",
    workers: int = WORKERS,
    auth: bool = False,
) -> Iterator[Served]:
    """Run `python -m mandate serve --workers N` on 127.0.0.1 against `database_url` until the block ends (or, with
    `variant`, the same server changed as bench/variants.py says). With `auth`, the server is started as in
    production (authentication on): the load must send a token (bench/auth.py issues one)."""
    port = free_port()
    log = work / f"serve-{port}.log"
    env = {**os.environ, "DATABASE_URL": database_url}
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH", "")) if p)
    if variant is None:
        command = [sys.executable, "-m", "mandate", "serve", "--host", "127.0.0.1", "--port", str(port)]
        # Loopback without authentication, as the recorded results were measured; its cost is measured by
        # bench/auth.py (both ways in one run, docs/benchmarks.md "Authentication on vs off").
        command += ["--workers", str(workers)] + ([] if auth else ["--insecure-no-auth"])
    else:
        if auth:
            raise ValueError("the variants of bench/variants.py run without authentication")
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH", ""), root) if p)
        env["MANDATE_BENCH_WORKERS"] = str(workers)
        command = [sys.executable, "-m", "bench.variants", variant, "127.0.0.1", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    served = Served(process, port, log)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mandate serve exited with {process.returncode}: {log.read_text()[-2000:]}")
            try:
                if httpx.get(served.base_url + "/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mandate serve did not become healthy in {startup_s:.0f} s")
            time.sleep(0.2)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def cpu_seconds(pid: int | None) -> float | None:
    """CPU time (user + system) used so far by process `pid` and all its descendants, those that already exited
    included (their time is in their parent's children counters once reaped); None if the process is not visible."""
    if pid is None:
        return None
    try:
        root = psutil.Process(pid)
        t = root.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in root.children(recursive=True):
            try:
                c = child.cpu_times()
            except psutil.Error:
                continue
            total += c.user + c.system  # its reaped children are in its parent's counters once it exits
    except psutil.Error:
        return None
    return total


def own_children_cpu_seconds() -> float:
    """CPU time of this process's children that have exited and been waited for (wrk, pgbench)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


@dataclass
class Watch:
    """Samples RSS (MB) and CPU (% of one core) every `interval` seconds in a background thread: of the process and
    its children (uvicorn's worker processes) together; `per_process` keeps each one's RSS."""

    pid: int
    interval: float = 0.5
    samples: list[tuple[float, float, float]] = field(default_factory=list)  # (t, rss_mb, cpu_percent)
    per_process: dict[int, list[float]] = field(default_factory=dict)  # pid → RSS samples (MB)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = 0.0

    def _tree(self, root: psutil.Process, known: dict[int, psutil.Process]) -> list[psutil.Process]:
        try:
            children = root.children(recursive=True)
        except psutil.Error:
            children = []
        for child in children:
            if child.pid not in known:
                known[child.pid] = child
                child.cpu_percent(None)  # the first reading only starts the measurement
        return [root, *(known[c.pid] for c in children)]

    def _sample(self, root: psutil.Process, known: dict[int, psutil.Process]) -> tuple[float, float]:
        rss = cpu = 0.0
        for proc in self._tree(root, known):
            try:
                mb = proc.memory_info().rss / 1e6
                cpu += proc.cpu_percent(None)
            except psutil.Error:
                continue
            rss += mb
            self.per_process.setdefault(proc.pid, []).append(mb)
        return rss, cpu

    def __enter__(self) -> Watch:
        self._t0 = time.monotonic()
        root = psutil.Process(self.pid)
        root.cpu_percent(None)
        known: dict[int, psutil.Process] = {}
        rss, _ = self._sample(root, known)
        self.samples.append((0.0, rss, 0.0))

        def loop() -> None:
            while not self._stop.wait(self.interval):
                if not root.is_running():
                    return
                rss, cpu = self._sample(root, known)
                self.samples.append((time.monotonic() - self._t0, rss, cpu))

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def largest_process_mb(self) -> float | None:
        """The highest RSS any single process of the tree reached."""
        return max((max(v) for v in self.per_process.values() if v), default=None)

    def between(self, start: float, end: float) -> list[tuple[float, float, float]]:
        return [s for s in self.samples if start <= s[0] <= end]

    def now(self) -> float:
        return time.monotonic() - self._t0
