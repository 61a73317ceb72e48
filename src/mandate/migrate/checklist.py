"""The seed checklist as data (`checklist.yaml`): every box, its class (A/P/H) and the evidence key it maps to."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

CLASSES = ("A", "P", "H")


@dataclass(frozen=True)
class Item:
    line: int
    kind: str  # item (`- [ ]`) | troubleshooting (`N. [ ]`)
    cls: str  # A | P | H
    text: str
    section: tuple[str, ...]
    depth: int = 0
    number: int | None = None
    evidence: str | None = None
    note: str | None = None


@cache
def _data() -> dict[str, Any]:
    text = resources.files("mandate.migrate").joinpath("checklist.yaml").read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def items() -> list[Item]:
    """Every box of the checklist, in the order of the seed file."""
    return [
        Item(
            line=int(raw["line"]),
            kind=str(raw["kind"]),
            cls=str(raw["class"]),
            text=str(raw["text"]),
            section=tuple(raw["section"]),
            depth=int(raw.get("depth", 0)),
            number=raw.get("number"),
            evidence=raw.get("evidence"),
            note=raw.get("note"),
        )
        for raw in _data()["items"]
    ]


def source() -> str:
    return str(_data()["source"])


def post_checks() -> dict[str, list[str]]:
    """Evidence key -> the check ids of 008_POST_MIGRATION_VERIFICATION.sql that prove it."""
    mapping = _data().get("post_checks") or {}
    return {str(k): [str(c) for c in v] for k, v in mapping.items()}


def totals(kind: str = "item") -> dict[str, int]:
    found = [i for i in items() if i.kind == kind]
    return {c: sum(1 for i in found if i.cls == c) for c in CLASSES}
