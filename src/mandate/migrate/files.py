"""Migration files: `migrations/NNN_name.sql`, plain SQL that also runs as is with `psql -v ON_ERROR_STOP=1 -f`.

Conventions that let one file serve both psql and the runner:
- the file's own `BEGIN;` and `COMMIT;` lines (alone on their line) give psql one transaction; what precedes the
  first `BEGIN;` is a psql-only preamble (`\\set ON_ERROR_STOP on`, guards such as "already applied → \\quit");
- psql meta-commands (lines starting with a backslash) are for psql only.
The runner blanks out the preamble, the BEGIN/COMMIT lines and meta-commands (keeping line numbers, so error
positions match the file) and runs the rest inside its own transaction, together with the `migration_log` row.

Companion scripts such as `008_PRE_MIGRATION_CHECKS.sql` (upper case) are not migrations and are not applied.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

from mandate.errors import MigrationError

_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_TXN_LINE = re.compile(r"^\s*(BEGIN|COMMIT)\s*;\s*$", re.IGNORECASE)


def migrations_dir() -> Path:
    """The folder of migration files: inside the installed package, or the repository's `migrations/`."""
    packaged = Path(__file__).resolve().parents[1] / "migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "migrations"


@dataclass(frozen=True)
class MigrationFile:
    version: int
    name: str
    path: Path

    @cached_property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @cached_property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    @cached_property
    def description(self) -> str:
        """The first comment line of the file, without the leading dashes."""
        for line in self.text.splitlines():
            stripped = line.strip()
            if stripped.startswith("--") and stripped.strip("-").strip():
                return stripped.lstrip("-").strip()
        return self.name.replace("_", " ")

    def executable_sql(self) -> str:
        """The file's SQL for the runner: psql meta-commands and BEGIN/COMMIT lines blanked out."""
        source = self.text.splitlines()
        begins = [i for i, line in enumerate(source) if _TXN_LINE.match(line) and "BEGIN" in line.upper()]
        start = begins[0] if begins else 0
        lines = []
        for i, line in enumerate(source):
            if i < start or line.lstrip().startswith("\\") or _TXN_LINE.match(line):
                lines.append("")
            else:
                lines.append(line)
        return "\n".join(lines) + "\n"

    @property
    def label(self) -> str:
        return f"{self.version:03d}_{self.name}"


def load(directory: Path | None = None) -> list[MigrationFile]:
    directory = directory or migrations_dir()
    if not directory.is_dir():
        raise MigrationError(f"migration folder {directory} does not exist")
    found: dict[int, MigrationFile] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"two migration files have version {version:03d}: {found[version].path.name}, {path.name}"
            )
        found[version] = MigrationFile(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


def head_version(directory: Path | None = None) -> int:
    """The highest migration version in `directory` (default: the shipped migrations, read once per process)."""
    if directory is None:
        return _shipped_head()
    files = load(directory)
    return files[-1].version if files else 0


@cache
def _shipped_head() -> int:
    files = load()
    return files[-1].version if files else 0
