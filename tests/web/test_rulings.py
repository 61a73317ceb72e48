"""MANDATE.md §3a on a real server and database: fail closed under imperfect governance, replay what was decided.

Each test reproduces a finding of the review (issue 13) the way a user met it: governance applied with
`mandate apply`'s code, legacy or hand-written rows inserted with plain SQL (as psql would), decisions posted over
HTTP to a running server.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from mandate.apply import apply_bundle
from mandate.governance.bundle import BundleError, parse_bundle
from tests.helpers import run_cli
from tests.web.conftest import LiveServer, bearer, issue_token, start_server

ORG = "7d1f3c52-4b8e-4f0a-9c61-2e5d8a9b0c13"
SPEC_TRANSFER = {
    "spec_id": "spec-transfer",
    "version": "1",
    "organization_id": ORG,
    "domain": "payments",
    "intent": "transfer.create",
    "stage": "pre_commit",
    "signals": [{"name": "amount", "type": "number", "required": True}],
    "allowed_verdicts": ["ALLOW", "PAUSE", "BLOCK", "OBSERVE"],
    "status": "active",
    "enforcement": {
        "default_verdict": "ALLOW",
        "failure_mode": "BLOCK",
        "pause_requires": ["treasury-approval"],
        "resolution_timeout_minutes": 60,
    },
}
SPEC_REFUND = {
    "spec_id": "spec-refund",
    "version": "1",
    "organization_id": ORG,
    "domain": "payments",
    "intent": "refund.create",
    "stage": "pre_commit",
    "signals": [{"name": "amount", "type": "number"}],
    "allowed_verdicts": ["ALLOW", "PAUSE", "BLOCK", "OBSERVE"],
    "status": "active",
}


def scope(scope_id: str, team: str, **selectors: str) -> dict[str, Any]:
    return {"scope_id": scope_id, "organization_id": ORG, "domain": "payments", "owning_team": team, **selectors}


SCOPES = [
    scope("payments.all", "payments-governance"),
    scope("payments.prod", "payments-ops", environment="prod"),
    scope("payments.ledger", "ledger-team", system="ledger"),
]


def policy(policy_id: str, spec_id: str, scope_id: str, verdict: str, *conditions: dict[str, Any]) -> dict[str, Any]:
    return {"id": policy_id, "spec_id": spec_id, "scope_id": scope_id, "verdict": verdict, "conditions": conditions}


def amount_over(value: int) -> dict[str, Any]:
    return {"signal": "amount", "operator": ">", "value": value}


def bundle(*, specs: list[dict[str, Any]], snapshots: list[dict[str, Any]] = (), scopes: Any = SCOPES) -> str:  # type: ignore[assignment]
    return json.dumps(
        {
            "organizations": [{"organization_id": ORG, "name": "rulings-org"}],
            "domains": [{"organization_id": ORG, "domain": "payments", "name": "Payments"}],
            "scopes": list(scopes),
            "specs": specs,
            "snapshots": [
                {"organization_id": ORG, "domain": "payments", "version": s["version"], "policies": s["policies"]}
                for s in snapshots
            ],
        }
    )


def apply(url: str, text: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        apply_bundle(conn, parse_bundle(text, json_syntax=True))


def sql(url: str, query: str, params: Any = None) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(query, params)


def insert_snapshot(url: str, version: int, policies: list[Any]) -> None:
    """A snapshot written by hand, as legacy data and operators with psql do: nothing checks it."""
    sql(
        url,
        """INSERT INTO mandate.policy_snapshots (snapshot_id, version, policies, organization_id, domain)
           VALUES (gen_random_uuid(), %s, %s::jsonb, %s, 'payments')""",
        [version, json.dumps(policies), ORG],
    )


def decision(
    intent: str, amount: float, *, timestamp: str = "2026-11-24T10:00:00Z", **attribution: str
) -> dict[str, Any]:
    return {
        "decision_id": str(uuid.uuid4()),
        "organization_id": ORG,
        "domain": "payments",
        "intent": intent,
        "stage": "pre_commit",
        "actor": "treasury-agent",
        "target": "account-42",
        "context": {"amount": amount},
        "scope": attribution or {"environment": "prod"},
        "timestamp": timestamp,
    }


def wait_for(check: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def health(live: LiveServer) -> dict[str, Any]:
    response = live.client.get("/api/health")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def post(live: LiveServer, body: dict[str, Any]) -> dict[str, Any]:
    response = live.client.post("/api/decisions", json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def replay(live: LiveServer, decision_id: str) -> dict[str, Any]:
    response = live.client.get(f"/api/decisions/{decision_id}/replay")
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.fixture
def served(db_url: str) -> Iterator[Callable[[], LiveServer]]:
    """`served()` starts a server on `db_url` (after the test prepared the database); stopped at the end."""
    import httpx

    started: list[tuple[Any, Any, httpx.Client]] = []

    def start() -> LiveServer:
        server, thread, url = start_server(db_url)
        token = issue_token(db_url, organization_id=ORG)
        client = httpx.Client(base_url=url, timeout=10, headers=bearer(token))
        started.append((server, thread, client))
        return LiveServer(url, db_url, client, token)

    yield start
    for server, thread, client in started:
        client.close()
        server.should_exit = True
        thread.join(timeout=15)


# Fail closed ------------------------------------------------------------------------------------------------------


def test_no_snapshot_yet_gives_the_specs_default_verdict(db_url: str, served: Callable[[], LiveServer]) -> None:
    strict = {**SPEC_TRANSFER, "enforcement": {"default_verdict": "BLOCK", "failure_mode": "BLOCK"}}
    apply(db_url, bundle(specs=[strict]))
    live = served()

    answer = post(live, decision("transfer.create", 10))

    assert (answer["verdict"], answer["reason"], answer["snapshot"]) == ("BLOCK", "default", None)
    assert answer["explanation"]["gap"] is None
    assert "no policy snapshot yet" in answer["summary"]


def test_a_broken_newer_snapshot_fails_closed_for_its_spec_only(db_url: str, served: Callable[[], LiveServer]) -> None:
    apply(
        db_url,
        bundle(
            specs=[SPEC_TRANSFER, SPEC_REFUND],
            snapshots=[{"version": 1, "policies": [policy("p-allow", "spec-transfer", "payments.prod", "ALLOW")]}],
        ),
    )
    live = served()
    assert post(live, decision("transfer.create", 10))["verdict"] == "ALLOW"
    assert health(live)["governance_warnings"] == 0

    insert_snapshot(
        db_url,
        2,
        [
            policy(
                "p-velocity",
                "spec-transfer",
                "payments.prod",
                "PAUSE",
                {"field": "velocity", "operator": ">", "value": 3},
            ),
            policy("p-refund", "spec-refund", "payments.prod", "PAUSE", amount_over(100)),
        ],
    )
    wait_for(lambda: health(live)["governance_warnings"] == 1, "the server to load snapshot v2")

    broken = post(live, decision("transfer.create", 10))
    assert (broken["verdict"], broken["reason"]) == ("BLOCK", "error"), broken["summary"]
    assert [e["code"] for e in broken["explanation"]["errors"]] == ["broken_policy"]
    assert "p-velocity" in broken["summary"] and "velocity" in broken["explanation"]["errors"][0]["message"]
    refund = post(live, decision("refund.create", 250))
    assert (refund["verdict"], refund["winning_policy_id"], refund["explanation"]["errors"]) == (
        "PAUSE",
        "p-refund",
        [],
    )
    assert health(live)["status"] == "ok"


def test_unreadable_governance_rows_never_stop_the_server(db_url: str, served: Callable[[], LiveServer]) -> None:
    apply(db_url, bundle(specs=[SPEC_TRANSFER, SPEC_REFUND]))
    # A spec with a signal type the evaluator does not know, a policy without an operator, a policy without spec.
    sql(
        db_url,
        """INSERT INTO mandate.mandate_specs (spec_id, version, organization_id, domain, intent, stage,
                                              allowed_verdicts, signals, enforcement, status)
           VALUES ('spec-payout', '1', %s, 'payments', 'payout.create', 'pre_commit', '{ALLOW,BLOCK}',
                   '[{"name": "amount", "type": "integer"}]', '{}', 'active')""",
        [ORG],
    )
    insert_snapshot(
        db_url,
        1,
        [
            {"id": "p-no-operator", "spec_id": "spec-transfer", "scope_id": "payments.prod", "verdict": "ALLOW",
             "conditions": [{"field": "amount", "value": 3}]},
            {"id": "p-before-specs", "scope_id": "payments.prod", "verdict": "BLOCK", "conditions": []},
            policy("p-refund", "spec-refund", "payments.prod", "PAUSE", amount_over(100)),
        ],
    )  # fmt: skip

    live = served()  # starts, and answers
    body = health(live)
    assert (body["status"], body["governance_warnings"]) == ("ok", 3)
    payout = post(live, decision("payout.create", 10))
    assert (payout["verdict"], payout["explanation"]["gap"]["code"]) == ("OBSERVE", "no_active_spec")
    transfer = post(live, decision("transfer.create", 10))
    assert (transfer["verdict"], transfer["reason"]) == ("BLOCK", "error")  # spec-transfer's failure mode
    assert post(live, decision("refund.create", 250))["verdict"] == "PAUSE"  # unaffected

    check = run_cli("governance", "check", env={"DATABASE_URL": db_url})
    assert check.returncode == 1, check.stdout + check.stderr
    text = " ".join(check.stdout.split())
    for subject in ("spec-payout@1", "p-no-operator", "p-before-specs"):
        assert subject in text, text
    assert "3 governance problem(s)" in text


def test_a_running_server_keeps_loading_governance_past_bad_rows(db_url: str, served: Callable[[], LiveServer]) -> None:
    apply(db_url, bundle(specs=[SPEC_TRANSFER]))
    live = served()
    insert_snapshot(db_url, 1, [{"id": "p-bad", "spec_id": "spec-transfer", "conditions": "nonsense"}])
    wait_for(lambda: health(live)["governance_warnings"] == 1, "the reload that reports the bad row")

    apply(db_url, bundle(specs=[SPEC_TRANSFER, SPEC_REFUND]))  # later good governance still arrives
    wait_for(
        lambda: live.client.post("/api/decisions", json=decision("refund.create", 1)).status_code == 201,
        "the new spec to be served",
    )


def test_apply_refuses_a_failure_mode_the_spec_does_not_allow(db_url: str) -> None:
    wrong = {**SPEC_TRANSFER, "allowed_verdicts": ["ALLOW", "OBSERVE"], "enforcement": {"failure_mode": "BLOCK"}}
    with pytest.raises(BundleError, match="failure mode BLOCK is not among the allowed verdicts"):
        apply(db_url, bundle(specs=[wrong]))


# Authority and ties -------------------------------------------------------------------------------------------------


def test_scope_ties_share_authority_and_the_summary_names_the_winning_policys_scope(
    db_url: str, served: Callable[[], LiveServer]
) -> None:
    apply(
        db_url,
        bundle(
            specs=[SPEC_TRANSFER],
            snapshots=[
                {
                    "version": 1,
                    "policies": [
                        policy("p-prod-pause", "spec-transfer", "payments.prod", "PAUSE", amount_over(100)),
                        policy("p-ledger-block", "spec-transfer", "payments.ledger", "BLOCK", amount_over(1000)),
                        policy("p-root-block", "spec-transfer", "payments.all", "BLOCK", amount_over(1_000_000)),
                    ],
                }
            ],
        ),
    )
    live = served()

    tie = post(live, decision("transfer.create", 5000, environment="prod", system="ledger"))
    assert (tie["verdict"], tie["winning_policy_id"]) == ("BLOCK", "p-ledger-block")
    assert tie["scope"] == {
        "scope_id": "payments.ledger",
        "owning_team": "ledger-team",
        "ancestors": ["payments.all"],
        "tied_with": ["payments.prod"],
    }
    paused = post(live, decision("transfer.create", 500, environment="prod", system="ledger"))
    assert (paused["verdict"], paused["scope"]["scope_id"]) == ("PAUSE", "payments.prod")

    root = post(live, decision("transfer.create", 2_000_000))
    assert root["summary"] == (
        "BLOCK by p-root-block (scope payments.all, owner payments-governance; resolved scope payments.prod):"
        " amount > 1000000 (actual 2000000)"
    )
    assert root["explanation"]["authority"] == {"scope_id": "payments.all", "owning_team": "payments-governance"}


# Replay what was decided -------------------------------------------------------------------------------------------


def test_replay_survives_another_spec_renaming_a_signal(db_url: str, served: Callable[[], LiveServer]) -> None:
    policies = [
        policy("p-transfer", "spec-transfer", "payments.prod", "PAUSE", amount_over(100)),
        policy("p-refund", "spec-refund", "payments.prod", "PAUSE", amount_over(100)),
    ]
    apply(db_url, bundle(specs=[SPEC_TRANSFER, SPEC_REFUND], snapshots=[{"version": 1, "policies": policies}]))
    live = served()
    stored = post(live, decision("transfer.create", 500))

    renamed = {**SPEC_REFUND, "version": "2", "signals": [{"name": "total", "type": "number"}]}
    refund_v2 = policy(
        "p-refund", "spec-refund", "payments.prod", "PAUSE", {"signal": "total", "operator": ">", "value": 1}
    )
    apply(
        db_url,
        bundle(
            specs=[SPEC_TRANSFER, {**SPEC_REFUND, "status": "deprecated"}, renamed],
            snapshots=[{"version": 2, "policies": [policies[0], refund_v2]}],
        ),
    )
    result = replay(live, stored["decision_id"])
    assert (result["identical"], result["stages"][0]["differences"]) == (True, [])
    cli = run_cli("replay", stored["decision_id"], env={"DATABASE_URL": db_url})
    assert cli.returncode == 0 and "identical" in cli.stdout, cli.stdout + cli.stderr


def test_replay_is_identical_whatever_the_offset_and_the_database_time_zone(
    db_url: str, served: Callable[[], LiveServer]
) -> None:
    apply(
        db_url,
        bundle(
            specs=[SPEC_TRANSFER],
            snapshots=[{"version": 1, "policies": [policy("p", "spec-transfer", "payments.prod", "PAUSE")]}],
        ),
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        name = conn.info.dbname
        conn.execute(f"ALTER DATABASE \"{name}\" SET timezone = 'Pacific/Kiritimati'")  # +14:00, new sessions
    live = served()

    paused = post(live, decision("transfer.create", 5, timestamp="2026-11-24T10:00:00-09:30"))

    assert paused["pause"]["expires_at"] == "2026-11-24T20:30:00+00:00"  # in UTC, whatever the offsets
    assert replay(live, paused["decision_id"])["identical"] is True


def test_replay_resolves_the_scopes_that_were_in_force(db_url: str, served: Callable[[], LiveServer]) -> None:
    apply(
        db_url,
        bundle(
            specs=[SPEC_TRANSFER],
            snapshots=[{"version": 1, "policies": [policy("p", "spec-transfer", "payments.prod", "PAUSE")]}],
        ),
    )
    live = served()
    stored = post(live, decision("transfer.create", 5, environment="prod", service="api"))
    assert stored["scope"]["scope_id"] == "payments.prod"

    # A more specific scope registered afterwards would resolve today's decisions differently; not this one's.
    apply(db_url, bundle(specs=[SPEC_TRANSFER], scopes=[*SCOPES, scope("payments.prod.api", "api-team", environment="prod", service="api")]))  # fmt: skip
    wait_for(
        lambda: (
            post(live, decision("transfer.create", 5, environment="prod", service="api"))["scope"]["scope_id"]
            == "payments.prod.api"
        ),
        "the new scope to be served",
    )
    assert replay(live, stored["decision_id"])["identical"] is True


def test_a_legacy_verdict_without_stage_belongs_to_the_earliest_stage(
    db_url: str, served: Callable[[], LiveServer]
) -> None:
    apply(db_url, bundle(specs=[SPEC_TRANSFER]))
    decision_id = str(uuid.uuid4())
    legacy_verdict = str(uuid.uuid4())
    sql(
        db_url,
        """INSERT INTO mandate.decision_events (decision_id, intent, stage, actor, target, context, scope, "timestamp",
                                                organization_id, domain)
           VALUES (%(d)s, 'transfer.create', 'pre_commit', 'old-agent', 'account-1', '{"amount": 1}',
                   '{"environment": "prod"}', '2024-01-01T00:00:00Z', %(org)s, 'payments')""",
        {"d": decision_id, "org": ORG},
    )
    sql(
        db_url,
        """INSERT INTO mandate.verdict_events (verdict_id, decision_id, verdict, matched_policy_ids, "timestamp",
                                               organization_id, domain)
           VALUES (%(v)s, %(d)s, 'ALLOW', '{}', '2024-01-01T00:00:01Z', %(org)s, 'payments')""",
        {"d": decision_id, "v": legacy_verdict, "org": ORG},
    )
    live = served()
    later = {**decision("transfer.create", 2), "decision_id": decision_id, "stage": "executed"}
    later_answer = live.client.post("/api/decisions", json=later)
    assert later_answer.status_code == 201, later_answer.text

    listed = live.client.get("/api/verdicts", params={"organization_id": ORG, "domain": "payments"}).json()
    pairs = sorted((item["verdict_id"], item["stage"]) for item in listed["items"])
    assert pairs == sorted([(legacy_verdict, "pre_commit"), (later_answer.json()["verdict_id"], "executed")])
    stages = live.client.get(f"/api/decisions/{decision_id}").json()["stages"]
    assert {s["stage"]: s["verdict_id"] for s in stages} == {
        "pre_commit": legacy_verdict,
        "executed": later_answer.json()["verdict_id"],
    }
    verdicts = live.client.get(f"/api/decisions/{decision_id}/verdict").json()["verdicts"]
    assert {v["verdict_id"]: v["stage"] for v in verdicts} == {
        legacy_verdict: "pre_commit",
        later_answer.json()["verdict_id"]: "executed",
    }

    result = replay(live, decision_id)
    by_stage = {s["stage"]: s for s in result["stages"]}
    assert by_stage["pre_commit"]["replayable"] is False and "explanation" in by_stage["pre_commit"]["reason"]
    assert by_stage["executed"]["identical"] is True
    page = live.client.get(f"/decisions/{decision_id}")
    assert page.status_code == 200
    assert page.text.count("recorded before explanations were stored") == 1  # the legacy verdict, on pre_commit only
