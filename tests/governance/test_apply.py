"""`mandate apply`: bundles checked all-or-nothing against the database, written in one transaction.

The demo bundle is applied to a real database and its stored rows are read back through records.py into the pure
evaluator, which must reproduce the original sample agents' verdicts. Every refused bundle must name the file, the
object and the field, and leave every governance table exactly as it was.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg.rows import dict_row

from mandate.apply import apply_bundle
from mandate.evaluator import (
    CompiledSnapshot,
    Decision,
    Evaluation,
    ScopeIndex,
    Spec,
    Verdict,
    compile_snapshot,
    evaluate,
    validate_signals,
)
from mandate.governance.bundle import BundleError, BundleProblem, load_bundle, load_demo_bundle
from mandate.governance.plan import TABLES, snapshot_id
from mandate.governance.records import policies_from_records, scope_from_record, spec_from_record
from tests.helpers import run_cli, scalar

ORG = "550e8400-e29b-41d4-a716-446655440000"
CONFIG = "config-management"
SUPPORT = "customer-support"
WHEN = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DEMO: dict[str, Any] = yaml.safe_load(
    resources.files("mandate.governance").joinpath("demo.yaml").read_text(encoding="utf-8")
)


# Helpers --------------------------------------------------------------------------------------------------------------


def counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    return {table: scalar(conn, f"SELECT count(*) FROM mandate.{table}") for table in TABLES}


def demo_spec(spec_id: str, version: str = "1") -> dict[str, Any]:
    found = next(s for s in DEMO["specs"] if s["spec_id"] == spec_id and s["version"] == version)
    return copy.deepcopy(found)


def demo_snapshot(domain: str, version: int) -> dict[str, Any]:
    found = next(s for s in DEMO["snapshots"] if s["domain"] == domain and s["version"] == version)
    return copy.deepcopy(found)


def policy(policy_id: str, spec_id: str, scope_id: str, verdict: str, *conditions: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": policy_id,
        "spec_id": spec_id,
        "scope_id": scope_id,
        "conditions": list(conditions),
        "verdict": verdict,
    }


def write_bundle(directory: Path, name: str, data: Mapping[str, Any] | str) -> Path:
    path = directory / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(dict(data), sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def demo(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """A database holding the demo governance."""
    apply_bundle(conn, load_demo_bundle())
    return conn


def refused(conn: psycopg.Connection[Any], *paths: Path) -> list[BundleProblem]:
    """Apply `paths`, expect a refusal, check that nothing was written, and return the problems."""
    before = counts(conn)
    with pytest.raises(BundleError) as refusal:
        apply_bundle(conn, load_bundle(paths))
    assert counts(conn) == before
    assert "nothing was written" in str(refusal.value)
    return list(refusal.value.problems)


def named(problems: list[BundleProblem], file: Path | str, subject: str, field: str, *words: str) -> BundleProblem:
    """The problem about `subject` (a prefix of `specs[0] (spec-x@1)`) and `field`, whose text contains `words`."""
    for problem in problems:
        text = str(problem)
        if (
            problem.file == str(file)
            and problem.subject.startswith(subject)
            and problem.field == field
            and all(word in text for word in words)
        ):
            assert text.startswith(f"{file}: {problem.subject}: {field}: ")
            return problem
    raise AssertionError(
        f"no problem at {file}: {subject}: {field} with {words}; got:\n" + "\n".join(map(str, problems))
    )


# The demo, applied --------------------------------------------------------------------------------------------------


def test_demo_applies_on_a_fresh_database_and_a_second_apply_writes_nothing(db_url: str) -> None:
    env = {"DATABASE_URL": db_url}
    first = run_cli("apply", "--demo", env=env)
    assert first.returncode == 0, first.stderr
    assert "wrote 17 row(s)" in first.stdout
    with psycopg.connect(db_url, autocommit=True) as conn:
        after_first = counts(conn)
        assert after_first == {
            "organizations": 1,
            "domains": 2,
            "scopes": 4,
            "mandate_specs": 7,
            "spec_status_events": 0,
            "policy_snapshots": 3,
        }
        second = run_cli("apply", "--demo", env=env)
        assert second.returncode == 0, second.stderr
        assert "nothing to apply" in second.stdout
        assert counts(conn) == after_first


def test_demo_rows_carry_the_original_identifiers(demo: psycopg.Connection[Any]) -> None:
    cur = demo.cursor(row_factory=dict_row)
    org = cur.execute("SELECT organization_id::text AS id, name FROM mandate.organizations").fetchone()
    assert org == {"id": ORG, "name": "example-org"}
    scopes = cur.execute(
        "SELECT scope_id, environment, scope_system, service, agent, owning_team FROM mandate.scopes ORDER BY scope_id"
    ).fetchall()
    assert [(s["scope_id"], s["service"], s["agent"], s["owning_team"]) for s in scopes] == [
        ("config-management.prod.audit-logger", "audit-logger", "observe-agent", "audit-team"),
        ("config-management.prod.config-writer", "config-writer", "pre-commit-agent", "config-team"),
        ("config-management.prod.db-admin-tool", "db-admin-tool", "pause-escalation-agent", "dba-team"),
        ("customer-support.prod.chat-api", "chat-api", "chatbot-v3", "support-compliance"),
    ]
    assert {(s["environment"], s["scope_system"]) for s in scopes} == {("production", None)}
    statuses = cur.execute(
        "SELECT spec_id || '@' || version AS ref, current_status, replaced_by FROM mandate.spec_versions ORDER BY 1"
    ).fetchall()
    assert {s["ref"]: (s["current_status"], s["replaced_by"]) for s in statuses} == {
        "spec-executed-config-update-v1@1": ("active", None),
        "spec-executed-data-export-v1@1": ("active", None),
        "spec-executed-user-login-v1@1": ("active", None),
        "spec-pre-commit-database-drop-table-v1@1": ("active", None),
        "spec-pre-commit-file-write-v1@1": ("active", None),
        "spec-refund-v1@1.0.0": ("deprecated", "1.1.0"),
        "spec-refund-v1@1.1.0": ("active", None),
    }
    snapshots = cur.execute(
        "SELECT snapshot_id, organization_id::text AS org, domain, version, policies FROM mandate.policy_snapshots"
    ).fetchall()
    for row in snapshots:  # ids are uuid5 of (organization, domain, version): the same on every database
        assert row["snapshot_id"] == snapshot_id(row["org"], row["domain"], row["version"])
    by_version = {(r["domain"], r["version"]): [p["id"] for p in r["policies"]] for r in snapshots}
    assert by_version[(SUPPORT, 1)] == ["pol-refund-001"]
    assert by_version[(SUPPORT, 2)] == ["pol-refund-001", "pol-refund-002"]
    assert len(by_version[(CONFIG, 1)]) == 8


def test_the_demo_is_package_data() -> None:
    assert resources.files("mandate.governance").joinpath("demo.yaml").is_file()
    bundle = load_demo_bundle()
    assert bundle.files == ("demo.yaml",)
    assert [s.label for s in bundle.specs][-2:] == ["spec-refund-v1@1.0.0", "spec-refund-v1@1.1.0"]


# The demo scenarios, through the library ----------------------------------------------------------------------------


class Governance:
    """A domain's stored governance read back into evaluator models, as the ingestion path holds it."""

    def __init__(self, conn: psycopg.Connection[Any], domain: str) -> None:
        cur = conn.cursor(row_factory=dict_row)
        specs = cur.execute(
            """SELECT spec_id, version, organization_id::text AS organization_id, domain, intent, stage::text AS stage,
                      allowed_verdicts::text[] AS allowed_verdicts, signals, enforcement
               FROM mandate.spec_versions WHERE domain = %s AND current_status = 'active'""",
            [domain],
        ).fetchall()
        self.specs: dict[tuple[str, str], Spec] = {
            (s.intent, s.stage): s for s in (spec_from_record(row) for row in specs)
        }
        scopes = [
            scope_from_record(row)
            for row in cur.execute(
                """SELECT scope_id, organization_id::text AS organization_id, domain, environment, scope_system,
                          service, agent, tenant, owning_team FROM mandate.scopes WHERE domain = %s""",
                [domain],
            ).fetchall()
        ]
        self.scopes = ScopeIndex(scopes)
        row = cur.execute(
            """SELECT snapshot_id::text AS snapshot_id, version, policies FROM mandate.policy_snapshots
               WHERE domain = %s ORDER BY version DESC LIMIT 1""",
            [domain],
        ).fetchone()
        assert row is not None
        self.snapshot: CompiledSnapshot = compile_snapshot(
            row["snapshot_id"], row["version"], ORG, domain, policies_from_records(row["policies"]),
            self.specs.values(), scopes,
        )  # fmt: skip

    def judge(self, intent: str, stage: str, context: dict[str, Any], service: str, agent: str) -> Evaluation:
        decision = Decision(
            ORG,
            self.snapshot.domain,
            intent,
            stage,
            context,
            {"service": service, "agent": agent, "environment": "production"},
            WHEN,
        )
        spec = self.specs[(intent, stage)]
        assert validate_signals(spec, decision) == []
        resolution = self.scopes.resolve(decision)
        assert resolution is not None
        return evaluate(decision, spec, resolution, self.snapshot)


def test_a_large_production_yaml_write_is_paused(demo: psycopg.Connection[Any]) -> None:
    config = Governance(demo, CONFIG)
    result = config.judge(
        "file.write",
        "pre_commit",
        {"content_length": 2500000, "content_type": "yaml"},
        "config-writer",
        "pre-commit-agent",
    )
    assert result.verdict is Verdict.PAUSE
    assert result.winning_policy_id == "policy-pause-large-files-v1"
    assert result.scope_id == "config-management.prod.config-writer"
    assert result.owning_team == "config-team"
    assert result.pause_requires == ("compliance-review",)
    assert result.expires_at is not None and (result.expires_at - WHEN).total_seconds() == 3600


def test_a_critical_drop_without_backup_is_blocked_by_the_unbacked_up_drop_policy(
    demo: psycopg.Connection[Any],
) -> None:
    config = Governance(demo, CONFIG)
    result = config.judge(
        "database.drop_table",
        "pre_commit",
        {"cascade": True, "backup_first": False, "risk_level": "critical", "reversible": False},
        "db-admin-tool",
        "pause-escalation-agent",
    )
    assert result.verdict is Verdict.BLOCK
    assert result.matched_policy_ids == ("policy-block-unbackedup-drops-v1", "policy-pause-critical-db-ops-v1")
    assert result.winning_policy_id == "policy-block-unbackedup-drops-v1"
    assert result.owning_team == "dba-team"
    assert result.summary == (
        "BLOCK by policy-block-unbackedup-drops-v1 (scope config-management.prod.db-admin-tool, owner dba-team):"
        " backup_first == false"
    )


@pytest.mark.parametrize(
    ("intent", "context", "winner"),
    [
        (
            "user.login",
            {"user_id": "u-42", "ip_address": "10.0.0.7", "auth_method": "password"},
            "policy-observe-user-login-v1",
        ),
        (
            "data.export",
            {"format": "csv", "record_count": 5000, "includes_pii": True},
            "policy-observe-data-exports-v1",
        ),
        (
            "config.update",
            {"key": "max_connections", "old_value": "100", "new_value": "200"},
            "policy-observe-config-updates-v1",
        ),
    ],
)
def test_executed_events_are_observed_despite_an_undeclared_key(
    demo: psycopg.Connection[Any], intent: str, context: dict[str, Any], winner: str
) -> None:
    config = Governance(demo, CONFIG)
    result = config.judge(intent, "executed", {**context, "execution_success": True}, "audit-logger", "observe-agent")
    assert result.verdict is Verdict.OBSERVE
    assert result.winning_policy_id == winner
    assert result.owning_team == "audit-team"
    assert not result.errors


def test_a_refund_promised_on_a_completed_flight_is_blocked_by_snapshot_2(demo: psycopg.Connection[Any]) -> None:
    support = Governance(demo, SUPPORT)
    assert support.snapshot.version == 2
    result = support.judge(
        "issue_refund",
        "pre_commit",
        {"has_monetary_value": True, "policy_keyword": "refund", "flight_status": "completed"},
        "chat-api",
        "chatbot-v3",
    )
    assert result.verdict is Verdict.BLOCK
    assert result.winning_policy_id == "pol-refund-002"
    assert result.spec_version == "1.1.0"


def test_a_250_dollar_refund_on_a_departed_flight_is_paused(demo: psycopg.Connection[Any]) -> None:
    support = Governance(demo, SUPPORT)
    result = support.judge(
        "issue_refund",
        "pre_commit",
        {"has_monetary_value": True, "policy_keyword": "refund", "monetary_amount": 250, "flight_status": "departed"},
        "chat-api",
        "chatbot-v3",
    )
    assert result.verdict is Verdict.PAUSE
    assert result.matched_policy_ids == ("pol-refund-001",)
    assert result.pause_requires == ("compliance-team",)
    assert result.owning_team == "support-compliance"


def test_a_reply_without_a_monetary_promise_is_allowed_by_the_spec_default(demo: psycopg.Connection[Any]) -> None:
    support = Governance(demo, SUPPORT)
    result = support.judge("issue_refund", "pre_commit", {}, "chat-api", "chatbot-v3")
    assert result.verdict is Verdict.ALLOW
    assert result.winning_policy_id is None
    assert result.summary.startswith("ALLOW by default of spec spec-refund-v1@1.1.0")


# Refused bundles: the message names file, object and field; nothing is written ---------------------------------------


def test_an_unknown_signal_in_a_condition_is_refused(demo: psycopg.Connection[Any], tmp_path: Path) -> None:
    snapshot = demo_snapshot(SUPPORT, 2)
    snapshot["version"] = 3
    snapshot["policies"].append(
        policy(
            "pol-refund-003",
            "spec-refund-v1",
            "customer-support.prod.chat-api",
            "PAUSE",
            {"signal": "amout", "operator": ">", "value": 1000},
        )
    )
    path = write_bundle(tmp_path, "refunds.yaml", {"snapshots": [snapshot]})
    problems = refused(demo, path)
    named(
        problems, path, "snapshots[0].policies[2] (pol-refund-003)", "conditions[0].signal", "'amout'", "not a signal"
    )


def test_a_condition_written_with_field_is_named_as_written(demo: psycopg.Connection[Any], tmp_path: Path) -> None:
    snapshot = {
        "organization_id": ORG,
        "domain": SUPPORT,
        "policies": [
            policy(
                "pol-x",
                "spec-refund-v1",
                "customer-support.prod.chat-api",
                "PAUSE",
                {"field": "amout", "operator": ">", "value": 1},
            )
        ],
    }
    path = write_bundle(tmp_path, "legacy.yaml", {"snapshots": [snapshot]})
    named(refused(demo, path), path, "snapshots[0].policies[0] (pol-x)", "conditions[0].field", "'amout'")


def test_a_verdict_the_spec_does_not_allow_is_refused(demo: psycopg.Connection[Any], tmp_path: Path) -> None:
    snapshot = demo_snapshot(CONFIG, 1)
    del snapshot["version"]
    snapshot["policies"][5]["verdict"] = "PAUSE"  # policy-observe-user-login-v1: its spec allows OBSERVE only
    path = write_bundle(tmp_path, "config.yaml", {"snapshots": [snapshot]})
    named(
        refused(demo, path),
        path,
        "snapshots[0].policies[5] (policy-observe-user-login-v1)",
        "verdict",
        "does not allow PAUSE",
    )


def test_a_default_verdict_the_spec_does_not_allow_is_refused(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    spec = demo_spec("spec-executed-user-login-v1")
    spec["enforcement"]["default_verdict"] = "ALLOW"
    bundle = {k: DEMO[k] for k in ("organizations", "domains")} | {"specs": [spec]}
    path = write_bundle(tmp_path, "login.yaml", bundle)
    named(
        refused(conn, path),
        path,
        "specs[0] (spec-executed-user-login-v1@1)",
        "enforcement.default_verdict",
        "default verdict ALLOW is not among the allowed verdicts",
    )


def test_a_policy_bound_to_another_domains_spec_is_refused(demo: psycopg.Connection[Any], tmp_path: Path) -> None:
    snapshot = demo_snapshot(SUPPORT, 2)
    snapshot["version"] = 3
    snapshot["policies"].append(
        policy(
            "pol-cross-spec",
            "spec-pre-commit-file-write-v1",
            "customer-support.prod.chat-api",
            "BLOCK",
            {"signal": "content_length", "operator": ">", "value": 0},
        )
    )
    path = write_bundle(tmp_path, "cross.yaml", {"snapshots": [snapshot]})
    named(
        refused(demo, path),
        path,
        "snapshots[0].policies[2] (pol-cross-spec)",
        "spec_id",
        "belongs to domain config-management",
    )


def test_a_policy_bound_to_another_domains_scope_is_refused(demo: psycopg.Connection[Any], tmp_path: Path) -> None:
    snapshot = demo_snapshot(SUPPORT, 2)
    snapshot["version"] = 3
    snapshot["policies"][1]["scope_id"] = "config-management.prod.config-writer"
    path = write_bundle(tmp_path, "cross.yaml", {"snapshots": [snapshot]})
    named(
        refused(demo, path),
        path,
        "snapshots[0].policies[1] (pol-refund-002)",
        "scope_id",
        "belongs to domain config-management",
    )


@pytest.mark.parametrize(
    ("domain", "scope_id", "words"),
    [
        ("hr_ops", "hrxops.payroll", ("must start with its domain prefix 'hr_ops.'",)),  # LIKE 'hr_ops.%' would match
        ("hr_ops", "hr_opsx.payroll", ("must start with its domain prefix 'hr_ops.'",)),
        ("hr_ops", "finance.payroll", ("must start with its domain prefix 'hr_ops.'",)),
        ("hr_ops", "hr_ops", ("is not a scope id",)),
        ("hr_ops", "hr_ops.Payroll", ("is not a scope id",)),
    ],
)
def test_a_scope_id_without_its_domain_prefix_is_refused(
    conn: psycopg.Connection[Any], tmp_path: Path, domain: str, scope_id: str, words: tuple[str, ...]
) -> None:
    bundle = {
        "organizations": DEMO["organizations"],
        "domains": [{"organization_id": ORG, "domain": domain, "name": "HR operations"}],
        "scopes": [{"scope_id": scope_id, "organization_id": ORG, "domain": domain, "owning_team": "hr-team"}],
    }
    path = write_bundle(tmp_path, "hr.yaml", bundle)
    named(refused(conn, path), path, f"scopes[0] ({scope_id})", "scope_id", *words)


def test_a_scope_with_its_domain_prefix_is_accepted_even_with_an_underscore(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    bundle = {
        "organizations": DEMO["organizations"],
        "domains": [{"organization_id": ORG, "domain": "hr_ops"}],
        "scopes": [{"scope_id": "hr_ops.payroll", "organization_id": ORG, "domain": "hr_ops", "owning_team": "hr"}],
    }
    result = apply_bundle(conn, load_bundle([write_bundle(tmp_path, "hr.yaml", bundle)]))
    assert result.counts["scopes"] == 1


@pytest.mark.parametrize("domain", ["Customer Support", "hr.ops", "finance/eu", "ünicode"])
def test_a_domain_that_is_not_a_slug_is_refused(conn: psycopg.Connection[Any], tmp_path: Path, domain: str) -> None:
    bundle = {"organizations": DEMO["organizations"], "domains": [{"organization_id": ORG, "domain": domain}]}
    path = write_bundle(tmp_path, "domains.yaml", bundle)
    named(refused(conn, path), path, f"domains[0] ({domain})", "domain", "is not a slug")


def test_references_to_unknown_organizations_and_domains_are_refused(
    demo: psycopg.Connection[Any], tmp_path: Path
) -> None:
    stranger = str(uuid.uuid4())
    bundle = {
        "domains": [{"organization_id": stranger, "domain": "finance"}],
        "scopes": [
            {"scope_id": "finance.prod.billing", "organization_id": ORG, "domain": "finance", "owning_team": "t"}
        ],
    }
    path = write_bundle(tmp_path, "finance.yaml", bundle)
    problems = refused(demo, path)
    named(problems, path, "domains[0] (finance)", "organization_id", f"organization {stranger} does not exist")
    named(problems, path, "scopes[0] (finance.prod.billing)", "domain", "domain 'finance' does not exist")


def test_a_changed_spec_version_is_refused(demo: psycopg.Connection[Any], tmp_path: Path) -> None:
    spec = demo_spec("spec-pre-commit-file-write-v1")
    spec["signals"][0]["required"] = False
    path = write_bundle(tmp_path, "file-write.yaml", {"specs": [spec]})
    named(refused(demo, path), path, "specs[0] (spec-pre-commit-file-write-v1@1)", "signals", "immutable")


def test_two_active_versions_of_one_spec_are_refused(demo: psycopg.Connection[Any], tmp_path: Path) -> None:
    spec = demo_spec("spec-pre-commit-file-write-v1")
    spec["version"] = "2"
    path = write_bundle(tmp_path, "file-write.yaml", {"specs": [spec]})
    named(
        refused(demo, path),
        path,
        "specs[0] (spec-pre-commit-file-write-v1@2)",
        "status",
        "spec-pre-commit-file-write-v1@1 would both be active",
        "deprecate spec-pre-commit-file-write-v1@1",
    )


def test_activating_a_new_version_deprecates_the_old_one_in_the_same_transaction(
    demo: psycopg.Connection[Any], tmp_path: Path
) -> None:
    old = demo_spec("spec-pre-commit-file-write-v1")
    old |= {"status": "deprecated", "replaced_by": "2"}
    new = demo_spec("spec-pre-commit-file-write-v1") | {"version": "2"}
    path = write_bundle(tmp_path, "file-write.yaml", {"specs": [old, new]})
    before = counts(demo)
    result = apply_bundle(demo, load_bundle([path]))
    assert result.counts["mandate_specs"] == 1 and result.counts["spec_status_events"] == 1
    assert counts(demo) == before | {"mandate_specs": 8, "spec_status_events": 1}
    rows = demo.execute(
        """SELECT version, current_status FROM mandate.spec_versions
           WHERE spec_id = 'spec-pre-commit-file-write-v1' ORDER BY version"""
    ).fetchall()
    assert rows == [("1", "deprecated"), ("2", "active")]
    reason = demo.execute("SELECT reason FROM mandate.spec_status_events").fetchone()
    assert reason is not None and "replaced by spec-pre-commit-file-write-v1@2" in reason[0]
    assert apply_bundle(demo, load_bundle([path])).nothing_to_apply


def test_a_reused_snapshot_version_with_other_policies_is_refused(
    demo: psycopg.Connection[Any], tmp_path: Path
) -> None:
    snapshot = demo_snapshot(SUPPORT, 2)
    snapshot["policies"].pop()
    path = write_bundle(tmp_path, "support.yaml", {"snapshots": [snapshot]})
    named(
        refused(demo, path),
        path,
        "snapshots[0] (customer-support v2)",
        "policies",
        "already stored with other policies (removed pol-refund-002)",
    )


def test_a_new_snapshot_version_below_the_current_one_is_refused(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    bundle = copy.deepcopy(DEMO)
    bundle["snapshots"] = [s for s in bundle["snapshots"] if s["version"] != 1 or s["domain"] != SUPPORT]
    apply_bundle(conn, load_bundle([write_bundle(tmp_path, "v2-only.yaml", bundle)]))
    path = write_bundle(tmp_path, "v1.yaml", {"snapshots": [demo_snapshot(SUPPORT, 1)]})
    named(refused(conn, path), path, "snapshots[0] (customer-support v1)", "version", "not above the current version 2")


def test_an_unknown_field_is_refused_with_the_fields_allowed(db_url: str, tmp_path: Path) -> None:
    bundle = copy.deepcopy(DEMO)
    bundle["scopes"][2]["owning_tem"] = bundle["scopes"][2].pop("owning_team")
    path = write_bundle(tmp_path, "typo.yaml", bundle)
    result = run_cli("apply", str(path), env={"DATABASE_URL": db_url})
    assert result.returncode == 1
    stderr = " ".join(result.stderr.split())
    assert f"{path}: scopes[2] (config-management.prod.audit-logger): owning_tem: unknown field 'owning_tem'" in stderr
    assert "owning_team: required field is missing" in stderr
    with psycopg.connect(db_url) as conn:
        assert set(counts(conn).values()) == {0}


def test_malformed_yaml_is_refused_with_its_line(db_url: str, tmp_path: Path) -> None:
    path = write_bundle(tmp_path, "broken.yaml", "specs:\n  - spec_id: [unclosed\n")
    result = run_cli("apply", str(path), env={"DATABASE_URL": db_url})
    assert result.returncode == 1
    assert f"{path}: line 3, column 1: malformed YAML" in " ".join(result.stderr.split())
    with psycopg.connect(db_url) as conn:
        assert set(counts(conn).values()) == {0}


def test_a_missing_file_refuses_the_whole_apply(db_url: str, tmp_path: Path) -> None:
    good = write_bundle(tmp_path, "good.yaml", DEMO)
    missing = tmp_path / "missing.yaml"
    result = run_cli("apply", str(good), str(missing), env={"DATABASE_URL": db_url})
    assert result.returncode == 1
    assert f"{missing}: no such file" in " ".join(result.stderr.split())
    with psycopg.connect(db_url) as conn:
        assert set(counts(conn).values()) == {0}


@pytest.mark.parametrize(
    ("text", "got"), [("- organizations\n", "a list"), ("just text\n", "a string"), ("", "an empty file")]
)
def test_a_file_that_is_not_a_mapping_is_refused(db_url: str, tmp_path: Path, text: str, got: str) -> None:
    path = write_bundle(tmp_path, "list.yaml", text)
    result = run_cli("apply", str(path), env={"DATABASE_URL": db_url})
    assert result.returncode == 1
    assert f"{path}: (top level): a bundle is a mapping" in " ".join(result.stderr.split())
    assert got in result.stderr
    with psycopg.connect(db_url) as conn:
        assert set(counts(conn).values()) == {0}


def test_every_problem_of_every_file_is_reported_together(demo: psycopg.Connection[Any], tmp_path: Path) -> None:
    spec = demo_spec("spec-executed-user-login-v1")
    spec["enforcement"]["default_verdict"] = "ALLOW"
    first = write_bundle(tmp_path, "a.yaml", {"specs": [spec]})
    snapshot = demo_snapshot(SUPPORT, 2)
    snapshot["version"] = 3
    snapshot["policies"][0]["conditions"][0]["signal"] = "has_money"
    snapshot["policies"][1]["verdict"] = "DENY"
    second = write_bundle(tmp_path, "b.yaml", {"snapshots": [snapshot]})
    problems = refused(demo, first, second)
    assert len(problems) == 4
    named(problems, first, "specs[0]", "enforcement.default_verdict", "not among the allowed verdicts")
    named(problems, first, "specs[0]", "enforcement", "immutable")  # the stored version says otherwise
    named(problems, second, "snapshots[0].policies[0] (pol-refund-001)", "conditions[0].signal", "has_money")
    named(problems, second, "snapshots[0].policies[1] (pol-refund-002)", "verdict", "unknown verdict 'DENY'")


def test_yaml_1_1_booleans_and_duplicate_keys_are_not_silently_accepted(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    path = write_bundle(
        tmp_path,
        "dup.yaml",
        f"organizations:\n  - organization_id: {ORG}\n    name: example-org\n    name: other-org\n",
    )
    assert "found the key 'name' twice" in str(refused(conn, path)[0])
    spec = demo_spec("spec-executed-user-login-v1")
    spec["signals"][2]["values"] = ["yes", "no"]
    text = yaml.safe_dump({"specs": [spec]}).replace("'yes'", "yes").replace("'no'", "no")
    parsed = load_bundle([write_bundle(tmp_path, "yes-no.yaml", text)])
    assert parsed.specs[0].item.signals[2].values == ("yes", "no")  # strings, not booleans


# What an apply writes ---------------------------------------------------------------------------------------------


def test_deprecating_a_version_writes_one_status_event_and_nothing_else(
    demo: psycopg.Connection[Any], tmp_path: Path
) -> None:
    spec = demo_spec("spec-executed-config-update-v1") | {"status": "deprecated"}
    path = write_bundle(tmp_path, "deprecate.yaml", {"specs": [spec]})
    before = counts(demo)
    result = apply_bundle(demo, load_bundle([path]))
    assert [(c.table, c.key, c.change) for c in result.changes] == [
        ("spec_status_events", "spec-executed-config-update-v1@1", "active → deprecated")
    ]
    assert counts(demo) == before | {"spec_status_events": before["spec_status_events"] + 1}
    status = demo.execute(
        "SELECT current_status FROM mandate.spec_versions WHERE spec_id = 'spec-executed-config-update-v1'"
    ).fetchone()
    assert status == ("deprecated",)
    assert apply_bundle(demo, load_bundle([path])).nothing_to_apply


def test_a_snapshot_without_version_becomes_the_next_version_once(
    demo: psycopg.Connection[Any], tmp_path: Path
) -> None:
    snapshot = demo_snapshot(SUPPORT, 2)
    del snapshot["version"]
    same = write_bundle(tmp_path, "same.yaml", {"snapshots": [snapshot]})
    assert apply_bundle(demo, load_bundle([same])).nothing_to_apply  # equal to the current version 2
    snapshot["policies"][0]["conditions"][2]["value"] = 200
    changed = write_bundle(tmp_path, "changed.yaml", {"snapshots": [snapshot]})
    result = apply_bundle(demo, load_bundle([changed]))
    assert [(c.table, c.key) for c in result.changes] == [("policy_snapshots", "customer-support v3")]
    assert apply_bundle(demo, load_bundle([changed])).nothing_to_apply
    stored = demo.execute(
        "SELECT snapshot_id FROM mandate.policy_snapshots WHERE domain = %s AND version = 3", [SUPPORT]
    ).fetchone()
    assert stored == (snapshot_id(ORG, SUPPORT, 3),)


def test_a_json_bundle_is_the_same_bundle(demo: psycopg.Connection[Any], tmp_path: Path) -> None:
    path = tmp_path / "demo.json"
    path.write_text(json.dumps(DEMO), encoding="utf-8")
    assert apply_bundle(demo, load_bundle([path])).nothing_to_apply


def test_a_dry_run_writes_nothing(db_url: str) -> None:
    result = run_cli("apply", "--demo", "--dry-run", env={"DATABASE_URL": db_url})
    assert result.returncode == 0, result.stderr
    assert "would write 17 row(s)" in result.stdout
    with psycopg.connect(db_url) as conn:
        assert set(counts(conn).values()) == {0}


def test_apply_needs_files_or_demo() -> None:
    result = run_cli("apply")
    assert result.returncode == 2
    assert "give one or more bundle files, or --demo" in result.stderr


def test_apply_refuses_a_database_that_is_not_migrated(fresh_db: Callable[..., str]) -> None:
    result = run_cli("apply", "--demo", env={"DATABASE_URL": fresh_db(7)})
    assert result.returncode == 1
    assert "run `mandate migrate up` first" in result.stderr


def test_the_example_in_the_docs_applies_and_reapplies_as_nothing(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "bundles.md").read_text(encoding="utf-8")
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = write_bundle(tmp_path, "finance.yaml", example)
    result = apply_bundle(conn, load_bundle([path]))
    assert result.counts == {
        "organizations": 1,
        "domains": 1,
        "scopes": 1,
        "mandate_specs": 2,
        "spec_status_events": 0,
        "policy_snapshots": 1,
    }
    assert apply_bundle(conn, load_bundle([path])).nothing_to_apply


def test_descriptive_fields_left_out_are_taken_as_stored_but_others_must_match(
    demo: psycopg.Connection[Any], tmp_path: Path
) -> None:
    bare = {"domains": [{"organization_id": ORG, "domain": SUPPORT}]}
    assert apply_bundle(demo, load_bundle([write_bundle(tmp_path, "bare.yaml", bare)])).nothing_to_apply
    renamed = {"domains": [{"organization_id": ORG, "domain": SUPPORT, "description": "Something else"}]}
    path = write_bundle(tmp_path, "renamed.yaml", renamed)
    named(refused(demo, path), path, f"domains[0] ({SUPPORT})", "description", "already stored", "immutable")
    scope = copy.deepcopy(DEMO["scopes"][3]) | {"owning_team": "another-team"}
    path = write_bundle(tmp_path, "scope.yaml", {"scopes": [scope]})
    named(refused(demo, path), path, "scopes[0] (customer-support.prod.chat-api)", "owning_team", "support-compliance")


def test_two_scopes_with_the_same_selectors_are_refused(demo: psycopg.Connection[Any], tmp_path: Path) -> None:
    twin = copy.deepcopy(DEMO["scopes"][3]) | {"scope_id": "customer-support.prod.chat-api-again"}
    path = write_bundle(tmp_path, "twin.yaml", {"scopes": [twin]})
    named(
        refused(demo, path),
        path,
        "scopes[0] (customer-support.prod.chat-api-again)",
        "scope_id",
        "scope customer-support.prod.chat-api already selects exactly",
    )


def test_an_unquoted_decimal_version_is_refused(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    text = yaml.safe_dump({"specs": [demo_spec("spec-refund-v1", "1.1.0")]}).replace("version: 1.1.0", "version: 1.10")
    path = write_bundle(tmp_path, "refund.yaml", text)
    named(refused(conn, path), path, "specs[0] (spec-refund-v1@1.1)", "version", "quote the version")


def test_a_spec_change_that_would_break_the_current_snapshot_is_refused(
    demo: psycopg.Connection[Any], tmp_path: Path
) -> None:
    old = demo_spec("spec-refund-v1", "1.1.0") | {"status": "deprecated", "replaced_by": "1.2.0"}
    new = demo_spec("spec-refund-v1", "1.1.0") | {"version": "1.2.0"}
    new["signals"] = [s for s in new["signals"] if s["name"] != "flight_status"]
    path = write_bundle(tmp_path, "refund.yaml", {"specs": [old, new]})
    named(
        refused(demo, path),
        path,
        "specs[0] (spec-refund-v1@1.1.0)",
        "status",
        "the current snapshot v2 of customer-support would no longer load",
        "'flight_status' is not a signal of spec spec-refund-v1@1.2.0",
    )
    snapshot = demo_snapshot(SUPPORT, 2)
    del snapshot["version"]
    snapshot["policies"].pop()
    path = write_bundle(tmp_path, "refund.yaml", {"specs": [old, new], "snapshots": [snapshot]})
    result = apply_bundle(demo, load_bundle([path]))
    assert [c.key for c in result.changes] == [
        "spec-refund-v1@1.2.0",
        "spec-refund-v1@1.1.0",
        "customer-support v3",
    ]


def test_malformed_json_and_repeated_json_keys_are_refused(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"organizations": [}', encoding="utf-8")
    twice = tmp_path / "twice.json"
    twice.write_text('{"specs": [], "specs": []}', encoding="utf-8")
    problems = [str(p) for p in refused(conn, broken, twice)]
    assert problems == [
        f"{broken}: line 1, column 20: malformed JSON: Expecting value",
        f"{twice}: malformed JSON: the key 'specs' is given twice",
    ]
