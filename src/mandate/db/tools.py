"""PostgreSQL client tools (psql, pg_dump, pg_restore) chosen to fit the server.

pg_dump refuses to dump a server newer than itself ("server version mismatch"), so a tool qualifies when its
major version is at least the server's. Candidates are the embedded distribution's binaries, the tools on PATH
and Debian's /usr/lib/postgresql/<major>/bin; the closest qualifying major version wins.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mandate.db import embedded
from mandate.errors import ToolNotFound

_VERSION = re.compile(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Tool:
    path: Path
    major: int


@cache
def _major_of(path: Path) -> int | None:
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return None
    match = _VERSION.search(out.stdout)
    return int(match.group(1)) if match else None


def candidates(name: str) -> list[Path]:
    paths = [embedded.bin_dir() / name]
    on_path = shutil.which(name)
    if on_path:
        paths.append(Path(on_path).resolve())
    paths.extend(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}")))
    seen: list[Path] = []
    for p in paths:
        if p.is_file() and p not in seen:
            seen.append(p)
    return seen


def find(name: str, server_major: int) -> Tool:
    """The client tool `name` whose major version is the smallest one ≥ the server's major version."""
    found = [Tool(p, m) for p in candidates(name) if (m := _major_of(p)) is not None]
    fitting = sorted((t for t in found if t.major >= server_major), key=lambda t: t.major)
    if not fitting:
        have = ", ".join(f"{t.path} ({t.major})" for t in found) or "none"
        raise ToolNotFound(
            f"no {name} with major version >= {server_major} (the server's); found: {have}. "
            f"Install the PostgreSQL {server_major} client tools."
        )
    return fitting[0]
