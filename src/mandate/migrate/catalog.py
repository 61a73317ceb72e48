"""A comparable description of the `mandate` schema read from the PostgreSQL catalog.

Used to recognise a legacy database (adoption), to test that migrations produce the expected schema, and to
report what differs when a database cannot be classified. Secondary indexes are kept apart from the structure
(tables, columns, types, keys, checks, triggers, enum types): DBAs add and drop indexes over the years, so index
differences deserve a warning, never a refusal.

    python -m mandate.migrate.catalog URL > description.json

The catalog queries are in `db/catalog.py`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

import psycopg

from mandate.db import catalog as q


def describe(conn: psycopg.Connection[Any], *, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Describe schema `mandate`: {enums, functions, tables: {name: {columns, constraints, indexes, triggers}}}.

    Names are schema-qualified whatever the session's search_path (it is set to pg_catalog meanwhile)."""
    with q.catalog_search_path(conn):
        return _describe(conn, exclude)


def _describe(conn: psycopg.Connection[Any], exclude: frozenset[str]) -> dict[str, Any]:
    tables: dict[str, dict[str, Any]] = {}

    def table(name: str) -> dict[str, Any]:
        return tables.setdefault(name, {"columns": [], "constraints": {}, "indexes": {}, "triggers": {}})

    for rel, col, typ, notnull, default in q.columns(conn):
        if rel not in exclude:
            table(rel)["columns"].append([col, typ, bool(notnull), default])
    for rel, name, definition in q.constraints(conn):
        if rel not in exclude:
            table(rel)["constraints"][name] = definition
    for rel, name, definition in q.indexes(conn):
        if rel not in exclude:
            table(rel)["indexes"][name] = definition
    for rel, name, definition, enabled in q.triggers(conn):
        if rel not in exclude:
            table(rel)["triggers"][name] = definition + ("" if enabled == "O" else f" [enabled={enabled}]")
    return {
        "enums": {name: list(labels) for name, labels in q.enums(conn)},
        "functions": sorted(set(q.functions(conn))),
        "tables": dict(sorted(tables.items())),
    }


@dataclass
class Comparison:
    """Differences between an actual and an expected description."""

    structural: list[str] = field(default_factory=list)
    index_warnings: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return not self.structural


def compare(actual: dict[str, Any], expected: dict[str, Any]) -> Comparison:
    """Compare two descriptions. Index differences are warnings; everything else is structural."""
    result = Comparison()
    s = result.structural
    for name, labels in expected["enums"].items():
        got = actual["enums"].get(name)
        if got is None:
            s.append(f"enum type {name} is missing")
        elif got != labels:
            s.append(f"enum type {name} has labels {got}, expected {labels}")
    for name in sorted(set(expected["functions"]) - set(actual["functions"])):
        s.append(f"function {name}() is missing")
    for tname in sorted(set(actual["tables"]) - set(expected["tables"])):
        s.append(f"unexpected table {tname}")
    for tname, exp in expected["tables"].items():
        act = actual["tables"].get(tname)
        if act is None:
            s.append(f"table {tname} is missing")
            continue
        exp_cols = {c[0]: c for c in exp["columns"]}
        act_cols = {c[0]: c for c in act["columns"]}
        for col in exp_cols.keys() - act_cols.keys():
            s.append(f"{tname}.{col} is missing")
        for col in act_cols.keys() - exp_cols.keys():
            s.append(f"{tname}.{col} is not expected")
        for col in exp_cols.keys() & act_cols.keys():
            _, etype, enull, edef = exp_cols[col]
            _, atype, anull, adef = act_cols[col]
            if etype != atype:
                s.append(f"{tname}.{col} has type {atype}, expected {etype}")
            if enull != anull:
                s.append(f"{tname}.{col} is {'NOT NULL' if anull else 'nullable'}, expected the opposite")
            if edef != adef:
                s.append(f"{tname}.{col} has default {adef}, expected {edef}")
        for kind in ("constraints", "triggers"):
            for name, definition in exp[kind].items():
                got = act[kind].get(name)
                if got is None:
                    s.append(f"{tname}: {kind[:-1]} {name} is missing")
                elif got != definition:
                    s.append(f"{tname}: {kind[:-1]} {name} is `{got}`, expected `{definition}`")
            for name in act[kind].keys() - exp[kind].keys():
                s.append(f"{tname}: unexpected {kind[:-1]} {name}: {act[kind][name]}")
        for name, definition in exp["indexes"].items():
            got = act["indexes"].get(name)
            if got is None:
                result.index_warnings.append(f"{tname}: index {name} is missing")
            elif got != definition:
                result.index_warnings.append(f"{tname}: index {name} differs: {got}")
        for name in act["indexes"].keys() - exp["indexes"].keys():
            result.index_warnings.append(f"{tname}: additional index {name}")
    return result


def main() -> None:  # pragma: no cover - developer tool
    with psycopg.connect(sys.argv[1]) as conn:
        json.dump(describe(conn, exclude=frozenset({"migration_log"})), sys.stdout, indent=1)
        sys.stdout.write("\n")


if __name__ == "__main__":  # pragma: no cover
    main()
