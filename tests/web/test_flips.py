"""What would flip a verdict, where people read it: the verdict API and the decision page (issue 19)."""

from __future__ import annotations

import httpx
import psycopg

from mandate.apply import apply_bundle
from mandate.governance.bundle import load_demo_bundle
from tests.web.conftest import bearer, issue_token, start_server
from tests.web.test_api import CRITICAL_DROP, flat


def test_the_verdict_api_and_the_decision_page_say_what_would_flip_a_block(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        apply_bundle(conn, load_demo_bundle())
    server, thread, url = start_server(db_url)
    try:
        with httpx.Client(base_url=url, timeout=10, headers=bearer(issue_token(db_url))) as client:
            answer = client.post("/api/decisions", json=flat(*CRITICAL_DROP))
            assert answer.status_code == 201 and answer.json()["verdict"] == "BLOCK", answer.text
            decision_id = answer.json()["decision_id"]

            verdict = client.get(f"/api/decisions/{decision_id}/verdict").json()
            assert verdict["flips"] == [
                {
                    "changes": [{"signal": "backup_first", "value": True}],
                    "verdict": "PAUSE",
                    "sentence": "would be PAUSE instead of BLOCK if backup_first were true",
                }
            ]
            page = client.get(f"/decisions/{decision_id}")
            assert page.status_code == 200
            assert "would be PAUSE instead of BLOCK if backup_first were true" in page.text
    finally:
        server.should_exit = True
        thread.join(timeout=15)
