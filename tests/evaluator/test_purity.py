"""The evaluator is pure (MANDATE.md §2.4): it imports only pure standard-library modules and never reaches for
the clock, randomness, the environment, files, the network or logging."""

import ast
from pathlib import Path

import pytest

import mandate.evaluator

PACKAGE = Path(mandate.evaluator.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))

ALLOWED_IMPORTS = {
    "__future__",
    "collections",
    "collections.abc",
    "dataclasses",
    "datetime",
    "decimal",
    "enum",
    "functools",
    "itertools",
    "math",
    "operator",
    "re",
    "typing",
}
FORBIDDEN_NAMES = {
    # clock
    "now", "utcnow", "today", "time", "time_ns", "monotonic", "perf_counter", "localtime", "fromtimestamp",
    "utcfromtimestamp", "sleep",
    # randomness
    "random", "randint", "choice", "shuffle", "uuid1", "uuid4", "urandom", "token_hex", "secrets",
    # environment, processes and files
    "os", "sys", "environ", "getenv", "open", "input", "subprocess", "Path", "socket",
    # output and logging
    "print", "logging", "logger", "getLogger", "warn", "warnings",
    # dynamic code
    "eval", "exec", "compile", "__import__", "importlib", "globals", "breakpoint",
}  # fmt: skip


def test_the_package_is_scanned() -> None:
    assert {path.stem for path in MODULES} >= {"__init__", "engine", "model", "scopes", "signals", "snapshot"}


@pytest.mark.parametrize("path", MODULES, ids=[path.stem for path in MODULES])
def test_module_imports_only_pure_standard_library(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: use absolute imports"
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert name in ALLOWED_IMPORTS or name.startswith("mandate.evaluator"), f"{path.name} imports {name}"


@pytest.mark.parametrize("path", MODULES, ids=[path.stem for path in MODULES])
def test_module_never_reaches_for_the_clock_randomness_environment_or_output(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Name):
            name = node.id
        elif isinstance(node, ast.Attribute):
            name = node.attr
        elif isinstance(node, ast.alias):
            name = node.asname or node.name
        else:
            continue
        assert name not in FORBIDDEN_NAMES, f"{path.name}:{getattr(node, 'lineno', '?')} uses {name}"


@pytest.mark.parametrize("path", MODULES, ids=[path.stem for path in MODULES])
def test_datetimes_are_never_converted_through_local_time(path: Path) -> None:
    """`astimezone()` without a zone and `timestamp()` read the host's time zone: time must stay an argument."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Call) and isinstance(method := node.func, ast.Attribute)):
            continue
        if method.attr in {"astimezone", "timestamp"}:
            assert node.args, f"{path.name}:{node.lineno} calls {method.attr}() without a time zone"
