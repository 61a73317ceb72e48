"""The consoles commands print to, and the settings they read (once per command)."""

from __future__ import annotations

import sys

from rich.console import Console

from mandate.config import Settings

# Piped output (logs, CI, `| less`) is not squeezed to 80 columns: checksums and messages stay whole.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)


def settings() -> Settings:
    return Settings.from_env()
