"""The import rules of docs/architecture.md, read from the source with `ast`: every top-level module or package of
`mandate` has a layer, imports only from its own layer or those below, and no two of them import each other (not
even through others). A new module without a layer, or an arrow pointing up, fails here."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "mandate"

LAYERS: dict[str, int] = {
    # 0. Foundations: imported by everyone, import (almost) nothing.
    "errors": 0,
    "config": 0,
    "console": 0,
    "listener": 0,
    "tokens": 0,
    "vocabulary": 0,
    # 1. Pure rules: no I/O.
    "evaluator": 1,
    "observe": 1,
    "assisted": 1,
    "governance": 1,
    "approvals": 1,
    # 2. The database: SQL and connections.
    "db": 2,
    # 3. Use cases: one job each, over the database.
    "service": 3,
    "apply": 3,
    "group_commit": 3,
    "replay": 3,
    "approval_workflow": 3,
    "shadow": 3,
    "migrate": 3,
    "telemetry": 3,
    # 4. Faces: what people and programs talk to.
    "web": 4,
    "cli": 4,
    "__main__": 4,
    "demo": 4,
    "export": 4,
    "migrate_commands": 4,
    "governance_commands": 4,
    "approvals_commands": 4,
    "auth_commands": 4,
    "webhook_commands": 4,
    # The SDK and its integrations: installed beside agents, they import nothing of the server.
    "client": 4,
    "integrations": 4,
}

STANDALONE = {"client": {"client"}, "integrations": {"client", "integrations"}, "evaluator": {"evaluator"}}
"""Units that may import only these units of `mandate` (the SDK ships alone; the evaluator is pure)."""


def units() -> list[str]:
    return sorted(
        p.stem if p.is_file() else p.name
        for p in SRC.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())
    )


def unit_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "mandate" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS or (SRC / parts[1]).exists() or (SRC / f"{parts[1]}.py").exists() else None


def imports(unit: str, src: Path = SRC) -> Iterator[tuple[str, str, int]]:
    """(imported unit, file, line) for every `mandate` import of `unit`, lazy ones inside functions included."""
    path = src / unit
    files = sorted(path.rglob("*.py")) if path.is_dir() else [src / f"{unit}.py"]
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for target in sorted({t for t in map(unit_of, names) if t is not None and t != unit}):
                yield target, str(file.relative_to(src.parent)), node.lineno


def graph() -> dict[str, set[str]]:
    return {u: {t for t, _, _ in imports(u)} for u in units()}


def test_every_module_has_a_layer() -> None:
    assert [u for u in units() if u not in LAYERS] == [], "give it a layer in LAYERS and in docs/architecture.md"
    assert [u for u in LAYERS if u not in units()] == [], "a unit that no longer exists"


@pytest.mark.parametrize("unit", units())
def test_imports_point_down_or_sideways(unit: str) -> None:
    upward = [
        f"{file}:{line} imports {target} (layer {LAYERS.get(target)})"
        for target, file, line in imports(unit)
        if LAYERS.get(target, 99) > LAYERS.get(unit, -1)
    ]
    assert upward == [], f"{unit} is in layer {LAYERS.get(unit)}"
    allowed = STANDALONE.get(unit)
    if allowed is not None:
        outside = [f"{file}:{line} imports {target}" for target, file, line in imports(unit) if target not in allowed]
        assert outside == [], f"{unit} may import only {sorted(allowed)}"


def test_no_two_units_depend_on_each_other() -> None:
    edges = graph()
    reach: dict[str, set[str]] = {}

    def reachable(start: str) -> set[str]:
        if start not in reach:
            seen: set[str] = set()
            todo = list(edges.get(start, ()))
            while todo:
                node = todo.pop()
                if node not in seen:
                    seen.add(node)
                    todo.extend(edges.get(node, ()))
            reach[start] = seen
        return reach[start]

    cycles = sorted(f"{a} ⇄ {b}" for a in edges for b in edges[a] if a < b and a in reachable(b))
    assert cycles == []


def test_migrate_never_imports_the_web_layer() -> None:
    assert "web" not in graph()["migrate"]


def test_the_rules_catch_an_arrow_pointing_up(tmp_path: Path) -> None:
    """The checker itself, on a synthetic package: a lazy import of `web` inside a function of `db` is found, with
    its file and line, and it points up."""
    (tmp_path / "mandate" / "db").mkdir(parents=True)
    (tmp_path / "mandate" / "db" / "sneaky.py").write_text(
        "import os\n\n\ndef later():\n    from mandate.web.app import create_app\n    return create_app\n"
    )
    found = list(imports("db", tmp_path / "mandate"))
    assert found == [("web", "mandate/db/sneaky.py", 5)]
    assert LAYERS["web"] > LAYERS["db"]


SQL = re.compile(
    r"\b(SELECT\b|INSERT\s+INTO|UPDATE\s+\w|DELETE\s+FROM|CREATE\s+(TABLE|INDEX|ROLE)|ALTER\s+TABLE|GRANT\s)"
)
# Known debt (issue 15): SQL that still lives outside db/. The list only shrinks: a module that gains SQL fails,
# and so does a listed module that no longer has any (take it off the list). It is empty now: keep it so.
SQL_OUTSIDE_DB: set[str] = set()


def sql_modules(src: Path = SRC) -> set[str]:
    """Modules outside db/ with a string constant (not a docstring) that reads as SQL."""
    found = set()
    for file in sorted(src.rglob("*.py")):
        rel = file.relative_to(src).as_posix()
        if rel.startswith("db/"):
            continue
        tree = ast.parse(file.read_text(), str(file))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        if any(
            isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings and SQL.search(n.value)
            for n in ast.walk(tree)
        ):
            found.add(rel)
    return found


def test_sql_lives_in_db_except_the_listed_debt() -> None:
    found = sql_modules()
    assert sorted(found - SQL_OUTSIDE_DB) == [], "put the SQL in db/ (docs/architecture.md)"
    assert sorted(SQL_OUTSIDE_DB - found) == [], "no SQL there any more: take it off SQL_OUTSIDE_DB"


def test_the_sql_scan_sees_a_query_and_ignores_docstrings(tmp_path: Path) -> None:
    (tmp_path / "service.py").write_text('"""We SELECT nothing here."""\nQ = "SELECT 1 FROM mandate.x"\n')
    (tmp_path / "quiet.py").write_text('"""INSERT INTO words only."""\n__all__ = ["SELECTORS"]\n')
    assert sql_modules(tmp_path) == {"service.py"}
