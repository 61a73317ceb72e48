"""Properties of governance over time, through the API of a real server (hypothesis, fixed seed, small budget).

(a) every stored decision replays identically after random governance changes (new spec versions, snapshots,
    scopes); (b) adding policies or scopes never gives a decision a less severe verdict (under a spec whose default is OBSERVE, the least severe); (c) random malformed
    governance rows never stop the server and never change the verdicts of the specs they do not name.

Each example works in a domain of its own on one server, so examples stay independent although governance is
append-only.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mandate.apply import apply_bundle
from mandate.evaluator import SEVERITY, Verdict
from mandate.governance.bundle import parse_bundle
from tests.web.conftest import LiveServer, bearer, issue_token

ORG = "3c9a1e7f-5d2b-4a8c-9e6f-1b2d3c4e5f60"
FIELDS = {"environment": ["prod", "staging"], "service": ["api", "batch"], "system": ["ledger"]}
VERDICTS = ["ALLOW", "PAUSE", "BLOCK", "OBSERVE"]
_domains = itertools.count()
SETTINGS = settings(
    max_examples=15,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

selectors = st.dictionaries(st.sampled_from(sorted(FIELDS)), st.just(""), max_size=3).flatmap(
    lambda picked: st.fixed_dictionaries({name: st.sampled_from(FIELDS[name]) for name in picked})
)
attributions = st.fixed_dictionaries({}, optional={name: st.sampled_from(values) for name, values in FIELDS.items()})
conditions: st.SearchStrategy[list[dict[str, Any]]] = st.one_of(
    st.just([]),
    st.integers(0, 2000).map(lambda n: [{"signal": "amount", "operator": ">", "value": n}]),
    st.sampled_from(["low", "high"]).map(lambda v: [{"signal": "risk", "operator": "==", "value": v}]),
)
policies = st.lists(st.tuples(st.integers(0, 20), st.sampled_from(VERDICTS), conditions), max_size=5)
requests = st.lists(
    st.tuples(attributions, st.integers(0, 3000), st.sampled_from(["low", "high"])), min_size=1, max_size=5
)


class Domain:
    """One example's domain: its governance as bundle data, applied step by step."""

    def __init__(self, live: LiveServer) -> None:
        url = live.database_url
        if live.client.headers.get("x-properties-org") != ORG:  # an admin token of this organization, once
            live.client.headers.update({**bearer(issue_token(url, organization_id=ORG)), "x-properties-org": ORG})
        self.url = url
        self.name = f"prop-{next(_domains)}-{uuid.uuid4().hex[:6]}"
        self.scopes: list[dict[str, Any]] = [self.scope({})]
        self.spec_version = 1
        self.defaults = {1: "ALLOW"}  # spec version -> its default verdict (stored versions are immutable)
        self.snapshot = 0
        self.policies: list[dict[str, Any]] = []

    def scope(self, chosen: dict[str, str]) -> dict[str, Any]:
        suffix = ".".join(f"{name[:3]}-{value}" for name, value in sorted(chosen.items())) or "all"
        return {"scope_id": f"{self.name}.{suffix}", "organization_id": ORG, "domain": self.name,
                "owning_team": f"team-{suffix}", **chosen}  # fmt: skip

    def add_scopes(self, chosen: list[dict[str, str]]) -> None:
        known = {s["scope_id"] for s in self.scopes}
        for c in chosen:
            new = self.scope(c)
            if new["scope_id"] not in known:
                known.add(new["scope_id"])
                self.scopes.append(new)

    def spec(self, version: int, status: str) -> dict[str, Any]:
        return {
            "spec_id": f"spec-{self.name}",
            "version": str(version),
            "organization_id": ORG,
            "domain": self.name,
            "intent": "transfer.create",
            "stage": "pre_commit",
            "status": status,
            "signals": [
                {"name": "amount", "type": "number", "required": True},
                {"name": "risk", "type": "enum", "values": ["low", "high"]},
            ],
            "allowed_verdicts": VERDICTS,
            "enforcement": {"default_verdict": self.defaults[version], "failure_mode": "BLOCK",
                            "pause_requires": ["approval"], "resolution_timeout_minutes": 30},
        }  # fmt: skip

    def with_policies(self, generated: list[tuple[int, str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
        return [
            {"id": f"p-{self.snapshot + 1}-{i}", "spec_id": f"spec-{self.name}",
             "scope_id": self.scopes[index % len(self.scopes)]["scope_id"], "verdict": verdict, "conditions": conds}
            for i, (index, verdict, conds) in enumerate(generated)
        ]  # fmt: skip

    def apply(self, *, new_policies: list[dict[str, Any]] | None = None) -> None:
        specs = [
            self.spec(v, "active" if v == self.spec_version else "deprecated") for v in range(1, self.spec_version + 1)
        ]
        snapshots = []
        if new_policies is not None:
            self.snapshot += 1
            self.policies = new_policies
            snapshots = [
                {"organization_id": ORG, "domain": self.name, "version": self.snapshot, "policies": new_policies}
            ]
        text = json.dumps(
            {
                "organizations": [{"organization_id": ORG, "name": "properties-org"}],
                "domains": [{"organization_id": ORG, "domain": self.name, "name": self.name}],
                "scopes": self.scopes,
                "specs": specs,
                "snapshots": snapshots,
            }
        )
        with psycopg.connect(self.url, autocommit=True) as conn:
            apply_bundle(conn, parse_bundle(text, json_syntax=True))

    def decision(self, attribution: dict[str, str], amount: int, risk: str) -> dict[str, Any]:
        return {
            "decision_id": str(uuid.uuid4()),
            "organization_id": ORG,
            "domain": self.name,
            "intent": "transfer.create",
            "stage": "pre_commit",
            "actor": "agent",
            "target": "account",
            "context": {"amount": amount, "risk": risk},
            "scope": attribution,
            "timestamp": "2026-11-24T10:00:00+02:00",
        }


def wait_until(check: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def post(live: LiveServer, body: dict[str, Any]) -> dict[str, Any]:
    response = live.client.post("/api/decisions", json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def served_policies(live: LiveServer, domain: Domain) -> Callable[[], bool]:
    """True once the server evaluates with the domain's latest snapshot (the probe decision is stored, harmlessly)."""

    def check() -> bool:
        response = live.client.post("/api/decisions", json=domain.decision({}, 0, "low"))
        if response.status_code == 422:  # the server has not loaded the new domain yet
            return False
        assert response.status_code == 201, response.text
        return bool((response.json()["snapshot"] or {}).get("version") == domain.snapshot)

    return check


def served_version(live: LiveServer, domain: Domain) -> Callable[[], bool]:
    def check() -> bool:
        return bool(post(live, domain.decision({}, 0, "low"))["spec"]["version"] == str(domain.spec_version))

    return check


def replay_all(live: LiveServer, decision_ids: list[str]) -> None:
    for decision_id in decision_ids:
        result = live.client.get(f"/api/decisions/{decision_id}/replay")
        assert result.status_code == 200, result.text
        stages = result.json()["stages"]
        assert all(s["identical"] for s in stages), stages


@SETTINGS
@given(
    scopes=st.lists(selectors, max_size=4),
    first=policies,
    batch=requests,
    changes=st.lists(
        st.one_of(
            st.tuples(st.just("scopes"), st.lists(selectors, min_size=1, max_size=2)),
            st.tuples(st.just("snapshot"), policies),
            st.tuples(st.just("spec"), st.sampled_from(VERDICTS)),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_every_stored_decision_replays_identically_after_governance_changes(
    live: LiveServer, scopes: list[dict[str, str]], first: Any, batch: Any, changes: Any
) -> None:
    domain = Domain(live)
    domain.add_scopes(scopes)
    domain.apply(new_policies=domain.with_policies(first))
    wait_until(served_policies(live, domain), "the first snapshot")
    stored = []
    for kind, change in changes:
        stored += [post(live, domain.decision(*r))["decision_id"] for r in batch]
        if kind == "scopes":
            domain.add_scopes(change)
            domain.apply()
        elif kind == "snapshot":
            domain.apply(new_policies=domain.with_policies(change))
            wait_until(served_policies(live, domain), "the new snapshot")
        else:
            domain.spec_version += 1
            domain.defaults[domain.spec_version] = change
            domain.apply()
            wait_until(served_version(live, domain), "the new spec version")
    replay_all(live, stored)


@SETTINGS
@given(
    scopes=st.lists(selectors, max_size=4),
    first=policies,
    more=policies,
    added=st.lists(selectors, max_size=3),
    batch=requests,
)
def test_adding_policies_or_scopes_never_gives_a_less_severe_verdict(
    live: LiveServer, scopes: list[dict[str, str]], first: Any, more: Any, added: Any, batch: Any
) -> None:
    domain = Domain(live)
    # With the default OBSERVE, the least severe verdict (MANDATE.md §3.8): a spec whose default is above it would
    # let a newly matching OBSERVE policy replace the default, by the rules.
    domain.defaults[1] = "OBSERVE"
    domain.add_scopes(scopes)
    domain.apply(new_policies=domain.with_policies(first))
    wait_until(served_policies(live, domain), "the first snapshot")
    before = [post(live, domain.decision(*r)) for r in batch]

    domain.add_scopes(added)
    extra = domain.with_policies(more)
    domain.apply(new_policies=domain.policies + extra)
    wait_until(served_policies(live, domain), "the larger snapshot")
    after = [post(live, domain.decision(*r)) for r in batch]

    for old, new in zip(before, after, strict=True):
        assert SEVERITY[Verdict(new["verdict"])] >= SEVERITY[Verdict(old["verdict"])], (old["summary"], new["summary"])
    replay_all(live, [answer["decision_id"] for answer in before])


junk_policy = st.one_of(
    st.fixed_dictionaries({"id": st.text(max_size=5), "scope_id": st.text(max_size=5)}),  # names no spec
    st.fixed_dictionaries(
        {"id": st.text(min_size=1, max_size=5), "spec_id": st.just("spec-other"), "conditions": st.just("x")}
    ),
    st.integers() | st.none() | st.text(max_size=5),
)


@SETTINGS
@given(
    first=policies,
    batch=requests,
    junk=st.lists(junk_policy, min_size=1, max_size=4),
    bad_type=st.sampled_from(["integer", "float", "", "Number", "?"]),
)
def test_malformed_governance_rows_never_stop_the_server_nor_change_other_specs(
    live: LiveServer, first: Any, batch: Any, junk: list[Any], bad_type: str
) -> None:
    domain = Domain(live)
    domain.add_scopes([{"environment": "prod"}, {"system": "ledger"}])
    domain.apply(new_policies=domain.with_policies(first))
    wait_until(served_policies(live, domain), "the first snapshot")
    before = [post(live, domain.decision(*r)) for r in batch]
    warnings = live.client.get("/api/health").json()["governance_warnings"]

    with psycopg.connect(live.database_url, autocommit=True) as conn:
        conn.execute(  # a spec nobody can read, for another intent
            """INSERT INTO mandate.mandate_specs (spec_id, version, organization_id, domain, intent, stage,
                                                  allowed_verdicts, signals, enforcement, status)
               VALUES (%s, '1', %s, %s, 'payout.create', 'pre_commit', '{ALLOW}', %s::jsonb, '{}', 'active')""",
            [f"spec-other-{domain.name}", ORG, domain.name, json.dumps([{"name": "x", "type": bad_type}])],
        )
        conn.execute(  # the same sound policies, and junk beside them
            """INSERT INTO mandate.policy_snapshots (snapshot_id, version, policies, organization_id, domain)
               VALUES (gen_random_uuid(), %s, %s::jsonb, %s, %s)""",
            [domain.snapshot + 1, json.dumps([*domain.policies, *junk]), ORG, domain.name],
        )
    domain.snapshot += 1
    wait_until(served_policies(live, domain), "the snapshot with junk")

    health = live.client.get("/api/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["governance_warnings"] >= warnings + 1 + len(junk)
    after = [post(live, domain.decision(*r)) for r in batch]
    assert [a["verdict"] for a in after] == [b["verdict"] for b in before]
    assert [a["explanation"]["errors"] for a in after] == [[] for _ in after]
