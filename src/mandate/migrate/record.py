"""The JSON record of a runbook run, as the report reads it: its format, loading it, and the questions both the
evidence (`migrate/evidence/`) and the Markdown (`migrate/markdown.py`) ask of it.

A *finding* is what the record shows for one evidence key of `checklist.yaml`: `{"status": …, "text": …}` with
status `pass` (done or checked, with the evidence), `fail` (checked, and not met), `not_run` (this run could not or
did not do it, with why) or `info` (what the runbook contributes to an item a person judges).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FORMAT = 1
Data = dict[str, Any]
Finding = dict[str, str]  # {"status": pass|fail|not_run|info, "text": …}
Evidence = dict[str, Finding]  # evidence key → finding

PSQL_NOTE = (
    "the checklist's `psql -d mandate < mandate_backup_*.sql` cannot read this backup: it is a custom-format "
    "archive (pg_dump -Fc), which only pg_restore reads"
)


def load(json_path: Path) -> Data:
    loaded: Data = json.loads(json_path.read_text(encoding="utf-8"))
    if loaded.get("format") != FORMAT:
        raise ValueError(f"{json_path} is not a runbook report (format {loaded.get('format')!r})")
    return loaded


def finding(status: str, text: str) -> Finding:
    return {"status": status, "text": text}


def pass_or_fail(condition: bool, good: str, bad: str) -> Finding:
    return finding("pass", good) if condition else finding("fail", bad)


def check_results(data: Data, key: str) -> list[dict[str, Any]]:
    """The results of the check run recorded under `key` (prechecks, postchecks, …); none when it did not run."""
    run = data.get(key)
    return list(run["results"]) if run else []


def with_status(results: list[dict[str, Any]], status: str) -> list[dict[str, Any]]:
    return [r for r in results if r["status"] == status]


def why_not(data: Data, step: str) -> str:
    """Why `step` has nothing to show: the run stopped before it, or it was not part of the run."""
    failure = data.get("failure")
    if failure:
        return f"the run stopped earlier ({failure['step']}: {failure['message'][:200]})"
    return f"{step} was not part of this run"


def preflight_item(data: Data, key: str) -> dict[str, Any] | None:
    pre = data.get("preflight")
    if not pre:
        return None
    return next((i for i in pre["items"] if i["key"] == key), None)


def committed(data: Data) -> bool:
    return bool((data.get("migration") or {}).get("committed"))


def differences(data: Data) -> list[str]:
    """What differed from the baseline, before COMMIT and after it."""
    base = data.get("baseline") or {}
    return list(base.get("differences") or []) + list(base.get("differences_after_commit") or [])


def remedies_summary(remedies: dict[str, Any]) -> str:
    parts = []
    if remedies.get("domain_slugs"):
        parts.append("domain slugs " + ", ".join(f"{r['name']!r}→{r['slug']}" for r in remedies["domain_slugs"]))
    if remedies.get("scope_ids"):
        parts.append(f"{len(remedies['scope_ids'])} scope id(s) from the map")
    if remedies.get("unattributed_to"):
        u = remedies["unattributed_to"]
        parts.append(f"unattributed history → {u['organization_id']}/{u['domain']}")
    return "; ".join(parts) or "none"


def verification_problems(ver: dict[str, Any]) -> list[str]:
    problems = []
    if not ver.get("full_read"):
        problems.append(f"cannot be read to the end: {ver.get('full_read_error')}")
    if ver.get("tables_missing"):
        problems.append("tables missing: " + ", ".join(ver["tables_missing"]))
    if ver.get("manifest_sha256") and ver.get("manifest_sha256") != ver.get("sha256"):
        problems.append("SHA-256 differs from the manifest")
    return problems or ["unknown"]
