"""Replay from the command line: find the decision a person typed (a whole id or its first characters), load
governance, re-evaluate the stored decision, compare."""

from __future__ import annotations

import re
import uuid

import psycopg
from psycopg.rows import dict_row

from mandate import service
from mandate.db import decisions
from mandate.db.governance import load_governance
from mandate.errors import DatabaseUnavailable, MandateError

_HEX = re.compile(r"^[0-9a-f]{1,32}$")
SHOWN_CANDIDATES = 5
MIN_ID_PREFIX = 6
"""Hex digits a decision id typed by a person needs where others than its owner look (the UI, the API): fewer
would match too many ids to be worth a lookup."""


def prefix_range(typed: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The smallest and largest UUID that start with `typed` (hex digits, hyphens ignored, any case)."""
    digits = typed.strip().lower().replace("-", "")
    if not _HEX.match(digits):
        raise MandateError(
            f"{typed!r} is not a decision id: give the id or its first characters (hex digits, e.g. ee860bd9), "
            "as `mandate demo` and the UI show them"
        )
    return uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))


async def resolve_decision_id(database_url: str, typed: str) -> uuid.UUID:
    """The one decision whose id starts with `typed`; MandateError saying so when none or several do."""
    low, high = prefix_range(typed)
    try:
        async with await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, row_factory=dict_row, application_name="mandate replay"
        ) as conn:
            found = await decisions.decision_ids_between(conn, low, high, limit=SHOWN_CANDIDATES + 1)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to the database: {str(exc).strip().splitlines()[0]}") from None
    if not found:
        raise MandateError(f"no decision id starts with {typed!r}; `mandate demo` and the UI show decision ids")
    if len(found) > 1:
        shown = ", ".join(str(key) for key in found[:SHOWN_CANDIDATES])
        more = " and more" if len(found) > SHOWN_CANDIDATES else ""
        raise MandateError(f"several decision ids start with {typed!r} ({shown}{more}): type more of the id")
    return found[0]


async def replay_decision(database_url: str, decision_id: uuid.UUID) -> list[service.Replay]:
    async with await psycopg.AsyncConnection.connect(
        database_url, autocommit=True, row_factory=dict_row, application_name="mandate replay"
    ) as conn:
        governance = await load_governance(conn)
        try:
            return await service.replay(conn, governance, decision_id)
        except service.IngestError as exc:
            raise MandateError(exc.message) from None
