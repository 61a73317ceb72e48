"""`mandate export`: stored decisions as OCSF API Activity events (validated against docs/ocsf's JSON schema,
written from the OCSF class definitions) or as Mandate's own JSON lines, filtered by --since and --domain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from jsonschema import Draft202012Validator

from mandate.apply import apply_bundle
from mandate.governance.bundle import load_demo_bundle
from tests.web.conftest import bearer, issue_token, start_server

ORG = "550e8400-e29b-41d4-a716-446655440000"
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "docs" / "ocsf" / "api_activity.schema.json").read_text())
DROP_SCOPE = {"service": "db-admin-tool", "agent": "pause-escalation-agent", "environment": "production"}


def drop(risk: str, backup_first: bool, reversible: bool) -> dict[str, Any]:
    return {
        "decision_id": str(uuid.uuid4()),
        "organization_id": ORG,
        "domain": "config-management",
        "intent": "database.drop_table",
        "stage": "pre_commit",
        "actor": "pause-escalation-agent",
        "target": "production.users",
        "context": {"risk_level": risk, "backup_first": backup_first, "reversible": reversible},
        "scope": DROP_SCOPE,
    }


LOGIN = {
    "organization_id": ORG,
    "domain": "config-management",
    "intent": "user.login",
    "stage": "executed",
    "actor": "observe-agent",
    "target": "auth-service",
    "context": {"user_id": "u-1", "ip_address": "10.0.0.1", "auth_method": "password", "execution_success": True},
    "scope": {"service": "audit-logger", "agent": "observe-agent", "environment": "production"},
}


@pytest.fixture
def history(db_url: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A database with four decisions, one per verdict, sent through the API."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        apply_bundle(conn, load_demo_bundle())
    server, thread, url = start_server(db_url)
    try:
        with httpx.Client(base_url=url, timeout=10, headers=bearer(issue_token(db_url))) as client:
            answers = []
            for body in (drop("critical", False, False), drop("critical", True, False), drop("low", True, True), LOGIN):
                r = client.post("/api/decisions", json=body)
                assert r.status_code == 201, r.text
                answers.append(r.json())
        yield db_url, answers
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def export(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mandate", "export", *args],
        env={**os.environ, "DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def lines(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_every_ocsf_event_validates_and_carries_the_disposition_of_its_verdict(
    history: tuple[str, list[dict[str, Any]]],
) -> None:
    db_url, answers = history
    events = lines(export(db_url, "--format", "ocsf"))
    validator = Draft202012Validator(SCHEMA)
    for event in events:
        assert not list(validator.iter_errors(event)), list(validator.iter_errors(event))
    assert [e["unmapped"]["mandate"]["verdict"] for e in events] == ["BLOCK", "PAUSE", "ALLOW", "OBSERVE"]
    assert [(e["disposition_id"], e["disposition"]) for e in events] == [
        (2, "Blocked"), (14, "Delayed"), (1, "Allowed"), (17, "Logged")
    ]  # fmt: skip
    assert [e["severity_id"] for e in events] == [4, 3, 1, 1]
    block = events[0]
    assert block["metadata"]["correlation_uid"] == answers[0]["decision_id"]
    assert block["metadata"]["uid"] == answers[0]["verdict_id"]
    assert block["api"]["operation"] == "database.drop_table"
    assert block["policy"]["uid"] == "policy-block-unbackedup-drops-v1"
    assert block["message"] == answers[0]["summary"]
    assert block["actor"]["user"]["name"] == "pause-escalation-agent" and block["actor"]["app_name"] == "db-admin-tool"
    assert block["resources"] == [{"name": "production.users", "type": "config-management"}]
    assert events[1]["unmapped"]["mandate"]["pause_requires"] == ["dba-approval", "compliance-review"]


def test_the_schema_refuses_what_the_class_requires(history: tuple[str, list[dict[str, Any]]]) -> None:
    db_url, _ = history
    [event, *_] = lines(export(db_url, "--format", "ocsf"))
    validator = Draft202012Validator(SCHEMA)
    for required in ("actor", "api", "src_endpoint", "metadata", "disposition_id", "time"):
        broken = {k: v for k, v in event.items() if k != required}
        assert list(validator.iter_errors(broken)), f"an event without {required} passed"
    assert list(validator.iter_errors({**event, "disposition_id": 42}))


def test_jsonl_lines_and_the_filters(history: tuple[str, list[dict[str, Any]]]) -> None:
    db_url, answers = history
    rows = lines(export(db_url, "--format", "jsonl"))
    assert [r["decision_id"] for r in rows] == [a["decision_id"] for a in answers]
    assert rows[0]["verdict"] == "BLOCK" and rows[0]["scope_id"] == "config-management.prod.db-admin-tool"
    assert lines(export(db_url, "--format", "jsonl", "--domain", "customer-support")) == []
    assert len(lines(export(db_url, "--format", "ocsf", "--domain", "config-management"))) == 4
    assert lines(export(db_url, "--format", "jsonl", "--since", "2999-01-01T00:00:00Z")) == []
    assert len(lines(export(db_url, "--format", "jsonl", "--since", "2000-01-01T00:00:00+02:00"))) == 4


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--format", "csv"], "--format"), (["--format", "ocsf", "--since", "yesterday"], "--since"),
     (["--format", "ocsf", "--since", "2026-01-01T00:00:00"], "offset")],
)  # fmt: skip
def test_bad_options_fail_naming_the_option(db_url: str, args: list[str], says: str) -> None:
    done = export(db_url, *args)
    assert done.returncode != 0 and done.stdout == ""
    assert says in done.stderr
