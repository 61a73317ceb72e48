"""A real Mandate server (uvicorn on a free loopback port, in a thread) against a fresh database, and API tokens
issued in that database the way `mandate token create` issues them (authentication is on, as in production)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
import uvicorn

from mandate.apply import apply_bundle
from mandate.db import tokens as tq
from mandate.demo.scenarios import ORGANIZATION_ID
from mandate.governance.bundle import load_demo_bundle
from mandate.tokens import Role, digest, new_secret
from mandate.web.app import create_app


@dataclass
class LiveServer:
    url: str
    database_url: str
    client: httpx.Client
    token: str = ""  # the secret `client` sends (an admin token of the demo organization, all domains)


def issue_token(
    database_url: str,
    *,
    organization_id: str = ORGANIZATION_ID,
    role: str = "admin",
    domains: frozenset[str] | None = None,
    expires_at: datetime | None = None,
    name: str = "tests",
) -> str:
    """Issue a token in `database_url` (no organization or domain check, like `--force`); return its secret."""
    secret = new_secret()
    with psycopg.connect(database_url, autocommit=True) as conn:
        tq.issue(
            conn,
            secret_sha256=digest(secret),
            name=name,
            organization_id=UUID(organization_id),
            domains=domains,
            role=Role(role),
            expires_at=expires_at,
        )
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def start_server(database_url: str, **app_options: object) -> tuple[uvicorn.Server, threading.Thread, str]:
    config = uvicorn.Config(
        create_app(database_url, **app_options),  # type: ignore[arg-type]  # test-only keyword passthrough
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    ready = threading.Event()
    for _ in range(1000):
        if server.started or not thread.is_alive():
            break
        ready.wait(0.01)
    assert server.started, "the server did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


@contextmanager
def serving(
    db_url: str,
    *,
    governance: bool = True,
    organization_id: str = ORGANIZATION_ID,
    timeout: float = 10,
    **app_options: Any,
) -> Iterator[LiveServer]:
    """A live server on `db_url` (with the demo's governance applied first unless `governance` is False) and a client
    holding an admin token of `organization_id`; stopped (lifespan shutdown included) on exit."""
    if governance:
        with psycopg.connect(db_url, autocommit=True) as conn:
            apply_bundle(conn, load_demo_bundle())
    server, thread, url = start_server(db_url, **app_options)
    token = issue_token(db_url, organization_id=organization_id)
    try:
        with httpx.Client(base_url=url, timeout=timeout, headers=bearer(token)) as client:
            yield LiveServer(url, db_url, client, token)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        assert not thread.is_alive(), "the server did not stop"


@pytest.fixture
def live(db_url: str) -> Iterator[LiveServer]:
    with serving(db_url, governance=False) as server:
        yield server
