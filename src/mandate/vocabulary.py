"""The words every layer shares, each defined once: a stored row, the decision stages, and the identifier rules
for domains (slugs) and scope ids. Imports nothing of Mandate; everything may import it (docs/architecture.md)."""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

Row = dict[str, Any]
"""A row as psycopg's dict_row returns it, or a JSON object on its way out."""

Stage = Literal["proposed", "pre_commit", "executed"]
STAGES: tuple[Stage, ...] = get_args(Stage)
"""A decision's stages, in the order an action goes through them."""

SLUG = re.compile(r"[a-z0-9_-]+")
"""A domain name (and an owning team, a requirement): lower-case letters, digits, `_` and `-`; match it whole."""

SCOPE_ID = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)+")
"""A human-readable scope id (RFC-002): two or more slugs joined by dots, the first the domain; match it whole."""


def is_slug(text: str) -> bool:
    return SLUG.fullmatch(text) is not None


def is_scope_id(text: str) -> bool:
    return SCOPE_ID.fullmatch(text) is not None
