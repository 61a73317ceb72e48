"""A comparable description of the `mandate` schema read from the PostgreSQL catalog.

Used to recognise a legacy database (adoption), to test that migrations produce the expected schema, and to
report what differs when a database cannot be classified. Secondary indexes are kept apart from the structure
(tables, columns, types, keys, checks, triggers, enum types): DBAs add and drop indexes over the years, so index
differences deserve a warning, never a refusal.

    python -m mandate.migrate.catalog URL > description.json
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

import psycopg

SCHEMA = "mandate"

_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
ORDER BY c.relname, a.attnum
"""

_CONSTRAINTS = """
SELECT c.relname, con.conname, pg_get_constraintdef(con.oid)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s
ORDER BY 1, 2
"""

_INDEXES = """
SELECT c.relname, i.relname, pg_get_indexdef(i.oid)
FROM pg_index x
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.oid AND con.contype IN ('p', 'u', 'x'))
ORDER BY 1, 2
"""

_TRIGGERS = """
SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND NOT t.tgisinternal
ORDER BY 1, 2
"""

_ENUMS = """
SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
FROM pg_type t
JOIN pg_enum e ON e.enumtypid = t.oid
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = %s
GROUP BY t.typname
ORDER BY 1
"""

_FUNCTIONS = """
SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = %s ORDER BY 1
"""


def describe(conn: psycopg.Connection[Any], *, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Describe schema `mandate`: {enums, functions, tables: {name: {columns, constraints, indexes, triggers}}}.

    Names are schema-qualified whatever the session's search_path (it is set to pg_catalog meanwhile)."""
    row = conn.execute("SELECT current_setting('search_path')").fetchone()
    assert row is not None
    conn.execute("SELECT set_config('search_path', 'pg_catalog', false)")
    try:
        return _describe(conn, exclude)
    finally:
        conn.execute("SELECT set_config('search_path', %s, false)", (row[0],))


def _describe(conn: psycopg.Connection[Any], exclude: frozenset[str]) -> dict[str, Any]:
    tables: dict[str, dict[str, Any]] = {}

    def table(name: str) -> dict[str, Any]:
        return tables.setdefault(name, {"columns": [], "constraints": {}, "indexes": {}, "triggers": {}})

    for rel, col, typ, notnull, default in conn.execute(_COLUMNS, (SCHEMA,)):
        if rel not in exclude:
            table(rel)["columns"].append([col, typ, bool(notnull), default])
    for rel, name, definition in conn.execute(_CONSTRAINTS, (SCHEMA,)):
        if rel not in exclude:
            table(rel)["constraints"][name] = definition
    for rel, name, definition in conn.execute(_INDEXES, (SCHEMA,)):
        if rel not in exclude:
            table(rel)["indexes"][name] = definition
    for rel, name, definition, enabled in conn.execute(_TRIGGERS, (SCHEMA,)):
        if rel not in exclude:
            table(rel)["triggers"][name] = definition + ("" if enabled == "O" else f" [enabled={enabled}]")
    return {
        "enums": {name: list(labels) for name, labels in conn.execute(_ENUMS, (SCHEMA,))},
        "functions": sorted({name for (name,) in conn.execute(_FUNCTIONS, (SCHEMA,))}),
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
