"""A real Mandate server (uvicorn on a free loopback port, in a thread) against a fresh database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from mandate.web.app import create_app


@dataclass
class LiveServer:
    url: str
    database_url: str
    client: httpx.Client


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


@pytest.fixture
def live(db_url: str) -> Iterator[LiveServer]:
    server, thread, url = start_server(db_url)
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            yield LiveServer(url, db_url, client)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
