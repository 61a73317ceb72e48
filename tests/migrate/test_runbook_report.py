"""The runbook's report: every box of the seed checklist, in order, each A item ticked or not with its evidence."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mandate.migrate import checklist, report
from tests.conftest import PREFIX, PgServer
from tests.helpers import MIGRATIONS, run_cli
from tests.migrate.test_runbook import book, make_legacy


@pytest.fixture(scope="module")
def runs(
    pg: PgServer, templates: Callable[[int | None], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, dict[str, Any]]]:
    """The JSON records of three runs: a real one, a dry one, and one stopped by the gate."""
    created: list[str] = []

    def fresh_db(version: int | None = None) -> str:
        name = f"{PREFIX}{uuid.uuid4().hex[:12]}"
        created.append(name)
        return pg.create(name, template=templates(version))

    tmp = tmp_path_factory.mktemp("report")
    found = {}
    for kind, url, options in (
        ("real", make_legacy(fresh_db), {}),
        ("dry", make_legacy(fresh_db), {"dry_run": True}),
        ("gated", make_legacy(fresh_db, "add_non_slug_domains"), {}),
    ):
        outcome = book(url, tmp / kind, **options).run()
        found[kind] = outcome.data
    yield found
    for name in created:
        pg.drop(name)


def test_the_checklist_data_has_every_box_and_the_agreed_totals() -> None:
    items = checklist.items()
    assert len([i for i in items if i.kind == "item"]) == 225
    assert len([i for i in items if i.kind == "troubleshooting"]) == 33
    assert checklist.totals() == {"A": 119, "P": 56, "H": 50}
    assert checklist.totals("troubleshooting") == {"A": 8, "P": 18, "H": 7}
    lines = [i.line for i in items]
    assert lines == sorted(lines) and len(set(lines)) == len(lines)
    assert all(i.evidence for i in items if i.cls != "H")
    assert all(i.evidence is None for i in items if i.cls == "H")


def test_every_post_check_the_checklist_relies_on_exists_in_the_verification_script() -> None:
    script = (MIGRATIONS / "008_POST_MIGRATION_VERIFICATION.sql").read_text()
    defined = set(re.findall(r"^SELECT '(POST-\d+)'", script, re.MULTILINE))
    wanted = {cid for ids in checklist.post_checks().values() for cid in ids}
    assert wanted and wanted <= defined


def test_every_evidence_key_gets_a_verdict(runs: dict[str, dict[str, Any]]) -> None:
    keys = {i.evidence for i in checklist.items() if i.evidence}
    for data in runs.values():
        assert keys <= data["evidence"].keys()
        assert {v["status"] for v in data["evidence"].values()} <= {"pass", "fail", "not_run", "info"}


@pytest.mark.parametrize("kind", ["real", "dry", "gated"])
def test_the_report_lists_every_checklist_item_in_order_with_its_class(
    runs: dict[str, dict[str, Any]], kind: str
) -> None:
    text = Path(runs[kind]["report_paths"]["markdown"]).read_text()
    position = 0
    for item in checklist.items():
        found = text.find(f"] {item.text} — ", position)
        assert found >= 0, f"L{item.line} {item.text!r} missing (or out of order)"
        position = found
    body = text[text.index("## The checklist") :]
    boxes = [line for line in body.splitlines() if re.match(r"^\s*(- |\d+\. )\[[ x]\] ", line)]
    assert len(boxes) == 258
    for cls, main, trouble in (("A", 119, 8), ("P", 56, 18), ("H", 50, 7)):
        assert sum(1 for b in boxes if f"— **{cls}**" in b and b.lstrip().startswith("- ")) == main
        assert sum(1 for b in boxes if f"— **{cls}**" in b and re.match(r"^\d+\. ", b)) == trouble
    assert "225 items — A 119" in body and "P 56" in body and "H 50" in body
    # only A items are ever ticked; H items are left to people
    assert all("**A**" in b for b in boxes if "[x]" in b)
    assert all("[ ]" in b for b in boxes if "**H**" in b)


def test_a_successful_run_ticks_every_a_item_it_can_and_says_why_not_for_the_rest(
    runs: dict[str, dict[str, Any]],
) -> None:
    data = runs["real"]
    e = data["evidence"]
    a_items = [i for i in checklist.items() if i.cls == "A"]
    unticked = {i.evidence for i in a_items if e[i.evidence or ""]["status"] != "pass"}
    # Without --api-url the deployed services are not checked, and no restore test was asked for: nothing else.
    assert unticked <= {
        "services.healthy",
        "backup.restore_test",
        "rehearsal.prechecks",
        "rehearsal.migration",
        "rehearsal.post",
        "rehearsal.constraints",
        "rehearsal.prefix",
    }, unticked
    for key in (
        "prechecks.passed",
        "backup.verified",
        "post.domain_id_gone",
        "baseline.intact",
        "constraints.prefix",
        "smoke.domain",
        "migration_log.row",
        "run.success",
    ):
        assert e[key]["status"] == "pass", (key, e[key])
    text = Path(data["report_paths"]["markdown"]).read_text()
    assert "- [x] domain_id columns are gone — **A** ✔ POST-01 PASS" in text
    assert "psql -d mandate < mandate_backup_*.sql` cannot read this backup" in text
    assert data["backup"]["sha256"] in text and data["restore_command"] in text


def test_a_dry_run_ticks_nothing_that_needs_a_commit(runs: dict[str, dict[str, Any]]) -> None:
    e = runs["dry"]["evidence"]
    for key in ("migration.begin_commit", "migration.completed", "smoke.all", "backup.created", "migration_log.row"):
        assert e[key]["status"] == "not_run", (key, e[key])
    for key in ("rehearsal.migration", "rehearsal.post", "prechecks.passed", "post.passed", "constraints.slug"):
        assert e[key]["status"] == "pass", (key, e[key])


def test_a_gated_run_reports_the_failure_and_what_did_not_happen(runs: dict[str, dict[str, Any]]) -> None:
    data = runs["gated"]
    e = data["evidence"]
    assert e["prechecks.passed"]["status"] == "fail" and "PRE-11" in e["prechecks.passed"]["text"]
    assert e["prechecks.stop"]["status"] == "pass" and "nothing was changed" in e["prechecks.stop"]["text"]
    assert e["migration.started"]["status"] == "not_run"
    assert e["run.success"]["status"] == "fail"
    text = Path(data["report_paths"]["markdown"]).read_text()
    assert "REFUSED (nothing was changed)" in text
    assert "Database changed: **no" in text
    assert "--domain-slug" in text


def test_the_report_is_rendered_again_from_its_json(runs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    data = runs["real"]
    source = Path(data["report_paths"]["json"])
    written = Path(data["report_paths"]["markdown"]).read_text()
    assert report.render(report.load(source)) == written
    target = tmp_path / "again.md"
    result = run_cli("migrate", "report", str(source), "--output", str(target))
    assert result.returncode == 0, result.stderr
    assert target.read_text() == written
    bad = tmp_path / "not-a-report.json"
    bad.write_text('{"format": 0}')
    refused = run_cli("migrate", "report", str(bad))
    assert refused.returncode == 1 and "cannot read the runbook report" in refused.stderr
