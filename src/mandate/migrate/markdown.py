"""The runbook report's Markdown: the outcome and what to do next, timings per step and per 008 phase, estimate
against actual, counts and checksums before and after, the backup and how to restore it, every check, and the whole
checklist — every one of its items and troubleshooting boxes, in order, A items ticked or not with their evidence,
P items with what was run for a person to judge, H items left to people. One function per section of the report."""

from __future__ import annotations

import json
from typing import Any

from mandate.migrate import checklist
from mandate.migrate.evidence import evidence
from mandate.migrate.record import (
    PSQL_NOTE,
    Data,
    Evidence,
    finding,
    remedies_summary,
    verification_problems,
    why_not,
)

_MARK = {"pass": "x", "fail": " ", "not_run": " ", "info": " "}
_LABEL = {"pass": "✔", "fail": "✘ NOT MET:", "not_run": "– not done:", "info": "ℹ"}


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def _secs(value: Any) -> str:
    return f"{float(value):.2f} s" if value is not None else ""


def _check_rows(results: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for r in results:
        sample = "; ".join(r.get("sample") or [])
        more = (r.get("offending_count") or 0) - len(r.get("sample") or [])
        if more > 0:
            sample += f"; … and {more} more"
        remedy = r.get("remedy") if r["status"] in ("FAIL", "WARN") else ""
        rows.append([r["check_id"], r["status"], r["title"], r.get("measured"), sample, remedy])
    return rows


def render(data: Data) -> str:
    """The report's Markdown, section by section; the checklist with the record's evidence (computed when the
    record has none)."""
    e: Evidence = data.get("evidence") or evidence(data)
    sections = (
        _header(data),
        _outcome(data),
        _steps(data),
        _phases(data),
        _estimate(data),
        _preflight(data),
        _check_runs(data),
        _remedies(data),
        _baseline(data),
        _backup(data),
        _constraints(data),
        _smoke(data),
        _migration_log(data),
        _checklist(data, e),
        _artifacts(data),
    )
    return "\n".join(line for section in sections for line in section)


def _header(data: Data) -> list[str]:
    """The title and what was run, where and when."""
    out: list[str] = []
    add = out.append
    outcome = data.get("outcome", "unknown")
    title = {
        "succeeded": "SUCCEEDED",
        "rehearsed": "REHEARSED (dry run, rolled back)",
        "failed": "FAILED",
        "refused": "REFUSED (nothing was changed)",
    }.get(outcome, outcome.upper())
    add(f"# Migration 008 runbook report — {title}")
    add("")
    db = data.get("database") or {}
    add(f"- Database: `{db.get('name')}` on PostgreSQL {db.get('server_version')} (`{db.get('url')}`)")
    add(f"- Run: `{data.get('command')}` by {data.get('tool')}, run id `{data.get('run_id')}`")
    add(f"- Started {data.get('started_at')}, finished {data.get('finished_at')}, {_secs(data.get('duration_s'))}")
    add(f"- Mode: {'dry run (everything in one transaction, rolled back)' if data.get('dry_run') else 'real run'}")
    add(f"- Log: `{data.get('log_path')}`")
    resumed = data.get("resumed")
    if resumed:
        add(
            f"- Resumed: run `{resumed.get('run_id')}` committed the migration but stopped before its end; this run "
            "finished what it skipped (checks after COMMIT, ANALYZE, smoke tests, this report)"
        )
    for path in data.get("removed_partials") or []:
        add(f"- Removed the unfinished backup file of an interrupted run: `{path}`")
    add("")
    return out


def _outcome(data: Data) -> list[str]:
    """How it ended, what to do next, and the warnings."""
    out: list[str] = []
    add = out.append
    outcome = data.get("outcome", "unknown")
    add("## Outcome")
    add("")
    failure = data.get("failure")
    if failure:
        add(f"**Failed at: {failure['step']}.** {failure['message']}")
        add("")
        add(
            f"Database changed: **{'yes — the migration was committed' if failure.get('database_changed') else 'no — everything was rolled back'}**."
        )
        add("")
        add("What to do next:")
        add("")
        for cmd in failure.get("next") or []:
            add(f"- {cmd}")
        add("")
    elif outcome == "succeeded":
        add("Migration 008 was applied, verified before and after COMMIT, and its constraint and smoke tests passed.")
        add("")
    elif outcome == "rehearsed":
        add("The whole migration ran inside one transaction and was rolled back: the database is exactly as before.")
        add("Timings below are real; use them for the maintenance window.")
        add("")
    for w in data.get("warnings") or []:
        add(f"- warning: {w}")
    if data.get("warnings"):
        add("")
    return out


def _steps(data: Data) -> list[str]:
    """Every step with its status, start and duration."""
    out: list[str] = []
    add = out.append
    add("## Steps")
    add("")
    add_rows = [
        [s["name"], s["status"], s["started_at"], _secs(s["duration_s"]), s.get("summary")]
        for s in data.get("steps") or []
    ]
    out.extend(_table(["step", "status", "started (UTC)", "duration", "summary"], add_rows))
    return out


def _phases(data: Data) -> list[str]:
    """008's phases, timed, with their estimates."""
    out: list[str] = []
    add = out.append
    est = data.get("estimate") or {}
    add("## 008 phases")
    add("")
    phase_est = est.get("phases") or {}
    out.extend(
        _table(
            ["phase", "title", "rows", "duration", "estimate"],
            [
                [
                    f"{p['number']}/{p['of']}",
                    p["title"],
                    p.get("rows"),
                    _secs(p["duration_s"]),
                    _secs(phase_est.get(str(p["number"]))),
                ]
                for p in data.get("phases") or []
            ]
            or [["—", "the migration did not start", "", "", ""]],
        )
    )
    return out


def _estimate(data: Data) -> list[str]:
    """The estimate against the actual times."""
    out: list[str] = []
    add = out.append
    est = data.get("estimate") or {}
    add("## Estimate and actual")
    add("")
    actual = data.get("actual") or {}
    out.extend(
        _table(
            ["", "estimate", "actual"],
            [
                ["migration transaction", _secs(est.get("migration_s")), _secs(actual.get("migration_s"))],
                ["backup (dump + verification)", _secs(est.get("backup_s")), _secs(actual.get("backup_s"))],
                ["whole run", _secs(est.get("total_s")), _secs(data.get("duration_s"))],
            ],
        )
    )
    if est.get("basis"):
        add(f"Basis of the estimate: {est['basis']}.")
        add("")
    return out


def _preflight(data: Data) -> list[str]:
    """The pre-flight's items and the tables' sizes."""
    out: list[str] = []
    add = out.append
    pre = data.get("preflight")
    if pre:
        add("## Pre-flight")
        add("")
        out.extend(
            _table(
                ["item", "status", "measured", "detail"],
                [[i["title"], i["status"], i["measured"], i.get("detail")] for i in pre["items"]],
            )
        )
        tables = pre.get("tables") or {}
        if tables:
            out.extend(
                _table(
                    ["table", "rows", "heap", "indexes", "total"],
                    [[t, v["rows"], v["heap"], v["indexes"], v["total"]] for t, v in tables.items()],
                )
            )
    return out


def _check_runs(data: Data) -> list[str]:
    """Every run of a check script, check by check."""
    out: list[str] = []
    add = out.append
    for key, heading in (
        ("prechecks", "Pre-migration checks (the gate)"),
        ("prechecks_in_transaction", "Pre-migration checks again, inside the migration transaction"),
        ("postchecks", "Post-migration verification (before COMMIT)"),
        ("postchecks_after_commit", "Post-migration verification (after COMMIT)"),
    ):
        run = data.get(key)
        if run:
            add(f"## {heading}")
            add("")
            add(f"`{run['script']}` (sha256 `{run['checksum']}`), {_secs(run['duration_s'])}")
            add("")
            out.extend(
                _table(
                    ["check", "status", "title", "measured", "offending rows (first 10)", "remedy"],
                    _check_rows(run["results"]),
                )
            )
    return out


def _remedies(data: Data) -> list[str]:
    """The operator's remedies, given and used."""
    out: list[str] = []
    add = out.append
    remedies = data.get("remedies")
    add("## Operator remedies")
    add("")
    add(
        f"Given: {', '.join(data.get('remedy_sources') or []) or 'none'}. Used by 008 (recorded in migration_log.details): {remedies_summary(remedies or {})}."
    )
    add("")
    return out


def _baseline(data: Data) -> list[str]:
    """Row counts and content checksums, before and after."""
    out: list[str] = []
    add = out.append
    base = data.get("baseline") or {}
    if base.get("before"):
        add("## Row counts and content checksums")
        add("")
        rows = []
        created = base.get("created_by_remedies") or {}
        for t, b in base["before"].items():
            a = (base.get("after") or {}).get(t) or {}
            c = (base.get("counts_after_commit") or {}).get(t)
            if not a and c is None:
                equal = "not counted (the run stopped before)"
            elif (not a or (a["rows"] == b["rows"] and a["checksum"] == b["checksum"])) and c in (None, b["rows"]):
                equal = "yes"
            else:
                equal = "**NO**"
            extra = created.get(t) or []
            rows.append(
                [
                    t,
                    b["rows"],
                    a.get("rows", ""),
                    "" if c is None else c,
                    b["checksum"],
                    a.get("checksum", ""),
                    equal,
                    f"+{len(extra)}: " + ", ".join(extra) if extra else "",
                ]
            )
        out.extend(
            _table(
                [
                    "table",
                    "rows before",
                    "rows after",
                    "after COMMIT",
                    "checksum before",
                    "checksum after",
                    "equal",
                    "created by remedies (not in the counts)",
                ],
                rows,
            )
        )
    return out


def _backup(data: Data) -> list[str]:
    """The backup and how to restore it."""
    out: list[str] = []
    add = out.append
    backup = data.get("backup")
    add("## Backup")
    add("")
    if backup:
        ver = backup.get("verification") or {}
        add(f"- File: `{backup['path']}` ({backup['size']} bytes), manifest `{backup['path']}.json`")
        add(f"- SHA-256: `{backup['sha256']}`")
        add(
            f"- pg_dump: {_secs(backup['dump_s'])} with {backup['tool']}; verification {_secs(ver.get('duration_s'))}: "
            f"{'read to the end and complete' if ver.get('ok') else 'FAILED: ' + '; '.join(verification_problems(ver))}"
        )
        for c in backup.get("copies") or []:
            add(f"- Copy: `{c['path']}`, SHA-256 verified identical")
        rt = data.get("restore_test")
        if rt:
            add(f"- Restore test: {rt['summary']}")
    else:
        add("No backup in this run" + (" (dry run)." if data.get("dry_run") else "."))
    add("")
    add("## How to restore")
    add("")
    if data.get("restore_command"):
        add(
            "Restore this backup into the same database (replaces schema `mandate` in one transaction; a failure changes nothing):"
        )
        add("")
        add("```")
        add(f"mandate backup restore {backup['path'] if backup else 'FILE'}")
        add("# which runs:")
        add(str(data["restore_command"]))
        add("```")
        add("")
        add(
            f"Note: {PSQL_NOTE}. To inspect it without touching this database: "
            f"`mandate backup restore {backup['path'] if backup else 'FILE'} --into-new-database NAME`."
        )
    else:
        add("No backup was taken in this run; nothing to restore (a dry run or a refused run changes nothing).")
    add("")
    return out


def _constraints(data: Data) -> list[str]:
    """The constraint tests, before and after COMMIT."""
    out: list[str] = []
    add = out.append
    cons = data.get("constraints")
    if cons:
        add("## Constraint tests (T+60), in a rolled-back transaction")
        add("")
        rows = []
        for label, run in (("before COMMIT", cons), ("after COMMIT", data.get("constraints_after_commit"))):
            for t in (run or {}).get("tests") or []:
                rows.append(
                    [
                        label,
                        t["title"],
                        f"`{t['statement']}`",
                        t["expected"],
                        t["outcome"],
                        "PASS" if t["passed"] else "FAIL",
                    ]
                )
        out.extend(_table(["when", "test", "statement", "expected", "outcome", "result"], rows))
        add(
            f"Organization used: {cons['organization']}; created for the test and rolled back: {', '.join(cons['throwaway']) or 'nothing'}; test rows left afterwards: {cons['leftovers']}."
        )
        add("")
    return out


def _smoke(data: Data) -> list[str]:
    """The smoke tests."""
    out: list[str] = []
    add = out.append
    smoke = data.get("smoke") or {}
    add("## Smoke tests (T+80–100)")
    add("")
    if smoke.get("tests"):
        add(
            f"Against {smoke['target']}{' (Mandate API in-process on the migrated database)' if smoke['in_process'] else ''}."
        )
        add("")
        out.extend(
            _table(
                ["test", "request", "status", "result", "detail", "time"],
                [
                    [
                        t["key"],
                        t["url"],
                        t["status_code"],
                        "PASS" if t["passed"] else "FAIL",
                        t["detail"],
                        f"{t['elapsed_ms']:.0f} ms",
                    ]
                    for t in smoke["tests"]
                ],
            )
        )
    else:
        add(f"Not run: {smoke.get('skipped') or why_not(data, 'smoke tests')}.")
        add("")
    return out


def _migration_log(data: Data) -> list[str]:
    """008's migration_log row."""
    out: list[str] = []
    add = out.append
    log = data.get("migration_log")
    if log:
        add("## migration_log entry")
        add("")
        add("```json")
        add(json.dumps(log, indent=1, default=str))
        add("```")
        add("")
    return out


def _checklist(data: Data, e: Evidence) -> list[str]:
    """The whole checklist, ticked where this run gives the evidence."""
    out: list[str] = []
    add = out.append
    add("## The checklist")
    add("")
    add(_checklist_summary(e))
    add("")
    out.extend(_checklist_lines(e))
    add("")
    return out


def _artifacts(data: Data) -> list[str]:
    """The files of the run."""
    out: list[str] = []
    add = out.append
    add("## Artifacts")
    add("")
    for p in data.get("artifacts") or []:
        add(f"- `{p}`")
    add("")
    return out


def _checklist_summary(e: Evidence) -> str:
    items = checklist.items()
    main = [i for i in items if i.kind == "item"]
    ticked = sum(1 for i in main if i.cls == "A" and e.get(i.evidence or "", {}).get("status") == "pass")
    t = checklist.totals()
    tt = checklist.totals("troubleshooting")
    return (
        f"{checklist.source()}: {len(main)} items — A {t['A']} (machine, {ticked} ticked by this run), "
        f"P {t['P']} (machine-supported, a person judges), H {t['H']} (people); plus "
        f"{sum(tt.values())} troubleshooting boxes (A {tt['A']}, P {tt['P']}, H {tt['H']}). "
        "`[x]` = done with evidence; `[ ]` = not ticked, with why."
    )


def _checklist_lines(e: Evidence) -> list[str]:
    out: list[str] = []
    current: tuple[str, ...] = ()
    for item in checklist.items():
        if item.section != current:
            common = 0
            while common < min(len(current), len(item.section)) and current[common] == item.section[common]:
                common += 1
            for level in range(common, len(item.section)):
                if out and out[-1] != "":
                    out.append("")
                out.append("#" * (level + 3) + " " + item.section[level])
                out.append("")
            current = item.section
        indent = "  " * item.depth
        box = f"{item.number}. [{{}}]" if item.number is not None else "- [{}]"
        if item.cls == "H":
            out.append(f"{indent}{box.format(' ')} {item.text} — **H**, for people (L{item.line})")
            continue
        verdict = e.get(item.evidence or "") or finding("not_run", "no evidence recorded")
        mark = _MARK[verdict["status"]] if item.cls == "A" else " "
        if item.cls == "A":
            tail = f"— **A** {_LABEL[verdict['status']]} {verdict['text']}"
        else:
            tail = f"— **P**, for a person to judge; the runbook: {verdict['text']}"
            if item.note:
                tail += f" ({item.note})"
        out.append(f"{indent}{box.format(mark)} {item.text} {tail} (L{item.line})")
    return out
