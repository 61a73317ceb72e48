"""The consoles commands print to, and the settings they read (once per command)."""

from __future__ import annotations

import os
import sys

from rich.console import Console

from mandate.config import Settings

# Piped output (logs, CI, `| less`) is not squeezed to 80 columns: checksums and messages stay whole. A terminal's
# width is its own; COLUMNS, when set, wins over both (`COLUMNS=80 mandate demo | less`).
_COLUMNS = os.environ.get("COLUMNS", "").isdigit()
out = Console(highlight=False, width=None if sys.stdout.isatty() or _COLUMNS else 200)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() or _COLUMNS else 200)


def settings() -> Settings:
    return Settings.from_env()
