"""Replay from the command line: load governance, re-evaluate a stored decision, compare."""

from __future__ import annotations

import uuid

import psycopg
from psycopg.rows import dict_row

from mandate import service
from mandate.errors import MandateError
from mandate.governance import cache


async def replay_decision(database_url: str, decision_id: uuid.UUID) -> list[service.Replay]:
    async with await psycopg.AsyncConnection.connect(
        database_url, autocommit=True, row_factory=dict_row, application_name="mandate replay"
    ) as conn:
        governance = await cache.load(conn)
        try:
            return await service.replay(conn, governance, decision_id)
        except service.IngestError as exc:
            raise MandateError(exc.message) from None
