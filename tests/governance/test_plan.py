"""The apply's planner, without a database: a bundle against `Stored` rows gives the rows to write, or every problem.

`test_apply.py` runs the whole apply on PostgreSQL; these state the planner's rules on plain rows.
"""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any

import pytest
import yaml

from mandate.governance.bundle import BundleError, load_demo_bundle, parse_bundle
from mandate.governance.in_force import version_in_force
from mandate.governance.plan import TABLES, Plan, Stored, plan, snapshot_id, stored_from_rows, wanted

DEMO: dict[str, Any] = yaml.safe_load(
    resources.files("mandate.governance").joinpath("demo.yaml").read_text(encoding="utf-8")
)


def as_stored(planned: Plan) -> Stored:
    """What the database holds after writing `planned` (text ids, a spec's status as its current status)."""
    snapshots = [{**row, "snapshot_id": str(row["snapshot_id"])} for row in planned.snapshots]
    return stored_from_rows(
        planned.organizations,
        planned.domains,
        planned.scopes,
        [{**row, "current_status": row["status"]} for row in planned.specs],
        snapshots,
        snapshots,
    )


def test_a_bundle_on_an_empty_store_plans_every_row_in_write_order() -> None:
    planned = plan(load_demo_bundle(), Stored())
    assert planned.organizations and planned.domains and planned.scopes and planned.specs and planned.snapshots
    assert planned.status_events == []
    tables = [change.table for change in planned.changes]
    assert tables == sorted(tables, key=TABLES.index)
    assert [(r["domain"], r["version"]) for r in planned.snapshots] == [
        (s["domain"], s["version"]) for s in DEMO["snapshots"]
    ]
    for row in planned.snapshots:
        assert row["snapshot_id"] == snapshot_id(row["organization_id"], row["domain"], row["version"])


def test_a_bundle_that_repeats_the_store_plans_nothing() -> None:
    bundle = load_demo_bundle()
    again = plan(bundle, as_stored(plan(bundle, Stored())))
    assert again.changes == []
    assert (again.organizations, again.scopes, again.specs, again.snapshots) == ([], [], [], [])


def test_a_changed_snapshot_without_version_becomes_the_next_version() -> None:
    stored = as_stored(plan(load_demo_bundle(), Stored()))
    changed = copy.deepcopy(DEMO)
    snapshot = changed["snapshots"][0]
    snapshot["policies"] = snapshot["policies"][1:]
    declared = snapshot.pop("version")
    planned = plan(parse_bundle(yaml.safe_dump(changed), "changed.yaml"), stored)
    assert [(row["domain"], row["version"]) for row in planned.snapshots] == [(snapshot["domain"], declared + 1)]


def test_a_changed_stored_spec_version_is_refused_naming_the_field() -> None:
    stored = as_stored(plan(load_demo_bundle(), Stored()))
    changed = copy.deepcopy(DEMO)
    spec = changed["specs"][0]
    spec["intent"] = spec["intent"] + ".other"
    with pytest.raises(BundleError) as caught:
        plan(parse_bundle(yaml.safe_dump(changed), "changed.yaml"), stored)
    found = [p for p in caught.value.problems if p.field == "intent"]
    assert found and f"{spec['spec_id']}@{spec['version']} is already stored" in found[0].message


def test_a_policy_of_an_unknown_spec_is_refused_and_nothing_is_planned() -> None:
    broken = copy.deepcopy(DEMO)
    broken["snapshots"][0]["policies"][0]["spec_id"] = "no-such-spec"
    with pytest.raises(BundleError) as caught:
        plan(parse_bundle(yaml.safe_dump(broken), "broken.yaml"), Stored())
    assert any("no-such-spec" in str(problem) for problem in caught.value.problems)


def test_wanted_names_every_object_the_bundle_names() -> None:
    bundle = load_demo_bundle()
    named = wanted(bundle)
    assert named.organization_ids == sorted({str(o["organization_id"]) for o in DEMO["organizations"]})
    assert set(named.spec_ids) == {s["spec_id"] for s in DEMO["specs"]}
    assert set(named.scope_ids) >= {s["scope_id"] for s in DEMO["scopes"]}


@pytest.mark.parametrize(
    ("statuses", "chosen"),
    [
        (["active"], 0),
        (["draft"], 0),
        (["active", "draft"], 0),  # the active one, though older
        (["deprecated", "draft"], 1),  # none active: the newest
        (["active", "deprecated", "active"], 2),  # the newest active one
    ],
)
def test_the_version_in_force_is_the_newest_active_else_the_newest(statuses: list[str], chosen: int) -> None:
    versions = list(enumerate(statuses))
    assert version_in_force(versions, lambda v: v[1] == "active") == versions[chosen]
