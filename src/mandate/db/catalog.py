"""What PostgreSQL's catalog says about schema `mandate`: its tables, columns, constraints, indexes, triggers, enum
types and functions (`migrate/catalog.py` turns them into a comparable description), and the objects outside Mandate
that depend on its tables. Read only; every name is bound as a parameter."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

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

_TABLE_SIZES = """
SELECT c.relname, pg_relation_size(c.oid), pg_indexes_size(c.oid), pg_total_relation_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'mandate' AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""

_DEPENDENT_VIEWS = """
SELECT DISTINCT format('%%s %%I.%%I', CASE v.relkind WHEN 'm' THEN 'materialized view' ELSE 'view' END,
                       vn.nspname, v.relname)
FROM pg_depend d
JOIN pg_rewrite r ON r.oid = d.objid
JOIN pg_class v ON v.oid = r.ev_class
JOIN pg_namespace vn ON vn.oid = v.relnamespace
JOIN pg_class t ON t.oid = d.refobjid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE d.classid = 'pg_rewrite'::regclass AND tn.nspname = 'mandate' AND t.relname = ANY(%s) AND v.oid <> t.oid
"""

_FOREIGN_REFERENCES = """
SELECT format('foreign key %%I on %%I.%%I', con.conname, n.nspname, c.relname)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class r ON r.oid = con.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
WHERE con.contype = 'f' AND rn.nspname = 'mandate' AND r.relname = ANY(%s)
  AND NOT (n.nspname = 'mandate' AND c.relname = ANY(%s))
"""

_DOMAIN_ID_FUNCTIONS = """
SELECT format('function %%I.%%I()', n.nspname, p.proname)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND p.prosrc ~* '\\mdomain_id\\M'
ORDER BY 1
"""

Rows = list[tuple[Any, ...]]


@contextmanager
def catalog_search_path(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """search_path set to pg_catalog for the block (so that the catalog's functions qualify every name with its
    schema), the session's own restored afterwards."""
    row = conn.execute("SELECT current_setting('search_path')").fetchone()
    assert row is not None
    conn.execute("SELECT set_config('search_path', 'pg_catalog', false)")
    try:
        yield
    finally:
        conn.execute("SELECT set_config('search_path', %s, false)", (row[0],))


def columns(conn: psycopg.Connection[Any]) -> Rows:
    """(table, column, type, not null, default) of every column of the schema's tables, in table and column order."""
    return conn.execute(_COLUMNS, (SCHEMA,)).fetchall()


def constraints(conn: psycopg.Connection[Any]) -> Rows:
    """(table, constraint, definition) of every constraint."""
    return conn.execute(_CONSTRAINTS, (SCHEMA,)).fetchall()


def indexes(conn: psycopg.Connection[Any]) -> Rows:
    """(table, index, definition) of every index that does not back a key or an exclusion constraint."""
    return conn.execute(_INDEXES, (SCHEMA,)).fetchall()


def triggers(conn: psycopg.Connection[Any]) -> Rows:
    """(table, trigger, definition, enabled) of every trigger but PostgreSQL's internal ones."""
    return conn.execute(_TRIGGERS, (SCHEMA,)).fetchall()


def enums(conn: psycopg.Connection[Any]) -> Rows:
    """(type, labels in order) of every enum type."""
    return conn.execute(_ENUMS, (SCHEMA,)).fetchall()


def functions(conn: psycopg.Connection[Any]) -> list[str]:
    """Names of the schema's functions."""
    return [r[0] for r in conn.execute(_FUNCTIONS, (SCHEMA,))]


def tables(conn: psycopg.Connection[Any]) -> list[str]:
    """The schema's tables (plain and partitioned), by name."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY 1",
            (SCHEMA,),
        )
    ]


def has_column(conn: psycopg.Connection[Any], table: str, column: str) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s AND column_name = %s)",
        (SCHEMA, table, column),
    ).fetchone()
    return bool(row and row[0])


def has_table(conn: psycopg.Connection[Any], table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.{table}",)).fetchone()
    return row not in (None, (None,))


def table_sizes(conn: psycopg.Connection[Any]) -> Rows:
    """(table, heap bytes, index bytes, total bytes) of every table of the schema."""
    return conn.execute(_TABLE_SIZES).fetchall()


def row_count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(SCHEMA, table))).fetchone()
    assert row is not None
    return int(row[0])


def dependents(conn: psycopg.Connection[Any], rebuilt: Sequence[str], own: Sequence[str]) -> list[str]:
    """Views and foreign keys outside `own` (tables of Mandate) that depend on the tables `rebuilt`, described."""
    views = [r[0] for r in conn.execute(_DEPENDENT_VIEWS, (list(rebuilt),))]
    fks = [r[0] for r in conn.execute(_FOREIGN_REFERENCES, (list(rebuilt), list(own)))]
    return views + fks


def functions_mentioning_domain_id(conn: psycopg.Connection[Any]) -> list[str]:
    """Functions of any schema but PostgreSQL's own whose source mentions the word domain_id, described."""
    return [r[0] for r in conn.execute(_DOMAIN_ID_FUNCTIONS)]
