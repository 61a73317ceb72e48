"""`mandate export`: stored decisions streamed as JSON lines, either Mandate's own (`jsonl`) or OCSF events (`ocsf`).

One line per decision stage with its verdict, oldest first, read with a server-side cursor (constant memory
whatever the history's size); `--since` (inclusive, RFC 3339 with an offset) and `--domain` filter.

**OCSF** (schema 1.3.0): each decision is an *API Activity* event (class 6003, category 6 Application Activity):
the agent's call to Mandate's decision API. With the `security_control` profile it carries the authorization:

| Mandate | OCSF |
|---|---|
| verdict ALLOW / BLOCK / PAUSE / OBSERVE | `disposition_id` 1 Allowed / 2 Blocked / 14 Delayed (awaiting approval) / 17 Logged; `action_id` 1 Allowed / 2 Denied / 2 Denied / 3 Observed |
| the verdict's time | `time` (ms since the epoch, UTC); the decision's own time in `start_time` |
| actor, scope agent and service | `actor.user.name`, `actor.app_name` (the scope's service), `actor.user.uid` (the scope's agent) |
| intent, stage | `api.operation`, `api.request.uid` = decision id, `api.service.name` = `mandate` |
| target | `resources[0].name`, with the domain as `resources[0].type` |
| scope, owning team, spec, snapshot, policies | `policy` (`uid` = winning policy, `name` = the summary), `unmapped.mandate.*` |
| decision id, verdict id | `metadata.uid` = verdict id, `metadata.correlation_uid` = decision id |

`severity_id`: BLOCK 4 High, PAUSE 3 Medium, ALLOW and OBSERVE 1 Informational. `src_endpoint` is required by the
class and unknown to Mandate (it does not store addresses): it names the agent as `src_endpoint.name`. Approvals do
not exist yet, so a PAUSE is exported as Delayed with its decision id (`metadata.correlation_uid`).
docs/ocsf/api_activity.schema.json is the JSON schema the tests validate every event against, written from the
class definitions (base event, API Activity, the security_control profile).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import IO, Annotated, Any, Literal

import orjson
import psycopg
import typer

import mandate
from mandate.console import settings
from mandate.db import export as export_queries
from mandate.db.url import database_url
from mandate.errors import ConfigError
from mandate.vocabulary import Row

Format = Literal["ocsf", "jsonl"]
OCSF_VERSION = "1.3.0"
DISPOSITION = {"ALLOW": (1, "Allowed"), "BLOCK": (2, "Blocked"), "PAUSE": (14, "Delayed"), "OBSERVE": (17, "Logged")}
ACTION = {"ALLOW": (1, "Allowed"), "BLOCK": (2, "Denied"), "PAUSE": (2, "Denied"), "OBSERVE": (3, "Observed")}
OCSF_SEVERITY = {  # what OCSF calls a verdict; which verdict wins is evaluator/verdicts.py SEVERITY
    "ALLOW": (1, "Informational"),
    "OBSERVE": (1, "Informational"),
    "PAUSE": (3, "Medium"),
    "BLOCK": (4, "High"),
}
API_ACTIVITY, APPLICATION, OTHER = 6003, 6, 99


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def as_jsonl(r: Row) -> Row:
    """Mandate's own line: the decision and its verdict, as stored."""
    return {
        "decision_id": str(r["decision_id"]),
        "stage": r["stage"],
        "verdict_id": str(r["verdict_id"]),
        "verdict": r["verdict"],
        "reason": r["reason"],
        "summary": r["summary"],
        "organization_id": str(r["organization_id"]),
        "domain": r["domain"],
        "intent": r["intent"],
        "actor": r["actor"],
        "target": r["target"],
        "scope": r["scope"],
        "scope_id": r["scope_id"],
        "owning_team": r["owning_team"],
        "spec_id": r["spec_id"],
        "spec_version": r["spec_version"],
        "snapshot_id": None if r["snapshot_id"] is None else str(r["snapshot_id"]),
        "snapshot_version": r["snapshot_version"],
        "matched_policy_ids": list(r["matched_policy_ids"] or []),
        "winning_policy_id": r["winning_policy_id"],
        "pause_requires": list(r["pause_requires"] or []),
        "pause_expires_at": _iso(r["pause_expires_at"]),
        "timestamp": _iso(r["decided_at"]),
        "evaluated_at": _iso(r["evaluated_at"]),
    }


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def as_ocsf(r: Row) -> Row:
    """An OCSF 1.3.0 API Activity event (see the module docstring for the mapping)."""
    verdict = r["verdict"]
    disposition_id, disposition = DISPOSITION[verdict]
    action_id, action = ACTION[verdict]
    severity_id, severity = OCSF_SEVERITY[verdict]
    scope = r["scope"] or {}
    user: Row = {"name": r["actor"], "type_id": 99, "type": "Other"}
    if scope.get("agent"):
        user["uid"] = str(scope["agent"])
    actor: Row = {"user": user}
    if scope.get("service"):
        actor["app_name"] = str(scope["service"])
    policy: Row = {"name": r["summary"]}
    if r["winning_policy_id"]:
        policy["uid"] = r["winning_policy_id"]
    if r["snapshot_version"] is not None:
        policy["version"] = str(r["snapshot_version"])
    event: Row = {
        "class_uid": API_ACTIVITY,
        "class_name": "API Activity",
        "category_uid": APPLICATION,
        "category_name": "Application Activity",
        "activity_id": OTHER,
        "activity_name": "Decide",
        "type_uid": API_ACTIVITY * 100 + OTHER,
        "type_name": "API Activity: Other",
        "time": _ms(r["evaluated_at"]),
        "start_time": _ms(r["decided_at"]),
        "severity_id": severity_id,
        "severity": severity,
        "status_id": 1,
        "status": "Success",
        "message": r["summary"],
        "action_id": action_id,
        "action": action,
        "disposition_id": disposition_id,
        "disposition": disposition,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "Mandate", "vendor_name": "Mandate", "version": mandate.__version__},
            "profiles": ["security_control"],
            "uid": str(r["verdict_id"]),
            "correlation_uid": str(r["decision_id"]),
            "logged_time": _ms(r["evaluated_at"]),
        },
        "actor": actor,
        "api": {
            "operation": r["intent"],
            "service": {"name": "mandate"},
            "request": {"uid": str(r["decision_id"])},
        },
        "src_endpoint": {"name": r["actor"]},
        "resources": [{"name": r["target"], "type": r["domain"]}],
        "policy": policy,
        "unmapped": {
            "mandate": {
                "verdict": verdict,
                "reason": r["reason"],
                "stage": r["stage"],
                "organization_id": str(r["organization_id"]),
                "domain": r["domain"],
                "scope_id": r["scope_id"],
                "owning_team": r["owning_team"],
                "spec": None if r["spec_id"] is None else f"{r['spec_id']}@{r['spec_version']}",
                "snapshot_id": None if r["snapshot_id"] is None else str(r["snapshot_id"]),
                "matched_policy_ids": list(r["matched_policy_ids"] or []),
                "pause_requires": list(r["pause_requires"] or []),
                "pause_expires_at": _iso(r["pause_expires_at"]),
            }
        },
    }
    return event


def write(rows: Iterator[Row], out: IO[bytes], fmt: Format) -> int:
    """Write one JSON line per row; the number written."""
    convert = as_ocsf if fmt == "ocsf" else as_jsonl
    n = 0
    for r in rows:
        out.write(orjson.dumps(convert(r)) + b"\n")
        n += 1
    return n


def parse_since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--since must be an RFC 3339 time with an offset, e.g. 2026-01-31T00:00:00Z (got {text!r})"
        ) from None
    if value.tzinfo is None:
        raise ConfigError(f"--since must include a time zone offset, e.g. Z or +02:00 (got {text!r})")
    return value


def export_command(
    format: Annotated[str, typer.Option("--format", help="ocsf (OCSF API Activity events) or jsonl (Mandate's own)")],
    since: Annotated[
        str | None, typer.Option(help="only verdicts at or after this time (RFC 3339 with an offset)")
    ] = None,
    domain: Annotated[str | None, typer.Option(help="only this domain")] = None,
) -> None:
    """Stream stored decisions to stdout, one JSON line each: OCSF events or Mandate's own lines, oldest first."""
    import sys

    if format not in ("ocsf", "jsonl"):
        raise ConfigError(f"--format must be ocsf or jsonl (got {format!r})")
    fmt: Format = "ocsf" if format == "ocsf" else "jsonl"
    start = parse_since(since)
    with psycopg.connect(database_url(settings())) as conn:
        write(export_queries.verdicts(conn, since=start, domain=domain), sys.stdout.buffer, fmt)
    sys.stdout.flush()
