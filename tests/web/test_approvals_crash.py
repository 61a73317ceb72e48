"""kill -9 of `mandate serve` between the approval and the resume, and right after the resume: nothing that was
acknowledged is lost, nothing half-written, and the approval is still single-use after the restart."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from bench.faults import served

from mandate.apply import apply_bundle
from mandate.governance.bundle import load_demo_bundle
from tests.web.conftest import bearer, issue_token
from tests.web.test_approvals import DOMAIN, drop

pytestmark = pytest.mark.slow


def test_kill_9_between_approval_and_resume_loses_nothing_acknowledged(db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        apply_bundle(conn, load_demo_bundle())
    agent = bearer(issue_token(db_url, role="agent", domains=frozenset({DOMAIN}), name="agent-a"))
    dba = bearer(issue_token(db_url, role="approver", domains=frozenset({DOMAIN}), name="dba-alice"))
    compliance = bearer(issue_token(db_url, role="approver", domains=frozenset({DOMAIN}), name="compliance-bob"))
    action = drop()

    # 1. PAUSE, both approvals acknowledged, then kill -9.
    with served(db_url, tmp_path / "first.log") as first:
        paused = httpx.post(first.url + "/api/decisions", json=action, headers=agent, timeout=30).json()
        approval_id = paused["approval_request"]["approval_id"]
        for headers, requirement in ((dba, "dba-approval"), (compliance, "compliance-review")):
            r = httpx.post(
                f"{first.url}/api/approvals/{approval_id}/approve",
                json={"requirement": requirement},
                headers=headers,
                timeout=30,
            )
            assert r.status_code == 201, r.text
        first.kill()

    # 2. A new process finds the approval approved, with both events; the resume is allowed; kill -9 again.
    resume = {**action, "decision_id": str(uuid.uuid4()), "approval_id": approval_id}
    with served(db_url, tmp_path / "second.log") as second:
        got = httpx.get(f"{second.url}/api/approvals/{approval_id}", headers=agent, timeout=30).json()
        assert got["state"] == "approved"
        assert [(e["kind"], e["requirement"]) for e in got["events"]] == [
            ("approved", "dba-approval"),
            ("approved", "compliance-review"),
        ]
        resumed = httpx.post(second.url + "/api/decisions", json=resume, headers=agent, timeout=30)
        assert (resumed.status_code, resumed.json()["verdict"]) == (201, "ALLOW")
        second.kill()

    # 3. After the restart the consumption is there, once; resending the same resume is an idempotent replay,
    #    and another resume is refused as consumed.
    with served(db_url, tmp_path / "third.log") as third:
        got = httpx.get(f"{third.url}/api/approvals/{approval_id}", headers=agent, timeout=30).json()
        assert got["state"] == "consumed" and got["consumed_by"]["decision_id"] == resume["decision_id"]
        again = httpx.post(third.url + "/api/decisions", json=resume, headers=agent, timeout=30)
        assert again.status_code == 200 and again.json()["idempotent_replay"] is True
        assert again.json()["verdict"] == "ALLOW"
        other = httpx.post(
            third.url + "/api/decisions",
            json={**resume, "decision_id": str(uuid.uuid4())},
            headers=agent,
            timeout=30,
        ).json()
        assert other["verdict"] == "BLOCK" and other["approval"]["refusal"]["code"] == "consumed"
        for decision_id in (paused["decision_id"], resume["decision_id"]):
            replay = httpx.get(f"{third.url}/api/decisions/{decision_id}/replay", headers=agent, timeout=30).json()
            assert replay["identical"] is True, replay
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT decision_id::text FROM mandate.approval_consumptions WHERE approval_id = %s", [approval_id]
        ).fetchall()
    assert rows == [(resume["decision_id"],)]
