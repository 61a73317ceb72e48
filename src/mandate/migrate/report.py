"""The runbook's report: the JSON record of a run with the evidence it gives each checklist item, and its Markdown.

`evidence(data)` (`migrate/evidence/`) turns the JSON record of a run into one finding per evidence key of
`checklist.yaml`; `render(data)` (`migrate/markdown.py`) writes the Markdown; `write` stores both, `load` reads the
record back (`migrate/record.py`), and `mandate migrate report` re-renders the Markdown from it.
"""

from __future__ import annotations

import json
from pathlib import Path

from mandate.migrate.evidence import evidence
from mandate.migrate.markdown import render
from mandate.migrate.record import FORMAT, Data, load


def write(data: Data, markdown: Path, json_path: Path) -> None:
    """Record the evidence in `data`, write it as JSON to `json_path` and its Markdown to `markdown`."""
    data["evidence"] = evidence(data)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
    markdown.write_text(render(data), encoding="utf-8")


__all__ = ["FORMAT", "Data", "evidence", "load", "render", "write"]
