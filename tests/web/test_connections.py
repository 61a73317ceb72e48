"""The connection bounds of `mandate serve` (web/connections.py) and the last-resort handler (web/errors.py), on a
real uvicorn with real sockets: header, body and size limits answer and close; a 500 keeps the connection alive.

The protocol is tested with deadlines shortened by monkeypatch (the server runs in this process); the defaults are
those the slow-client round of tests/web/test_faults.py runs against.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from mandate.web import connections
from mandate.web.app import create_app
from mandate.web.errors import LastResort


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    """Echo the body length; /boom raises before answering."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/boom":
        raise RuntimeError("a bug no handler knows")
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = json.dumps({"received": size}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def port(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setattr(connections, "HEADER_TIMEOUT_S", 0.5)
    monkeypatch.setattr(connections, "BODY_TIMEOUT_S", 0.5)
    config = uvicorn.Config(
        LastResort(_app), host="127.0.0.1", port=0, http=connections.BoundedHttp, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s


def _read_answer(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 answer (with content-length) from `s`."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"closed before an answer: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = s.recv(65536)
        assert chunk
        rest += chunk
    return int(lines[0].split()[1]), headers, rest[:length]


def _closed(s: socket.socket, within: float) -> bool:
    s.settimeout(within)
    try:
        while s.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def _request(path: str = "/", body: bytes = b"") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body


def test_headers_that_do_not_arrive_in_time_are_answered_408_and_the_connection_closed(port: int) -> None:
    with _connect(port) as s:
        s.sendall(b"POST / HTTP/1.1\r\nhost: t\r\n")  # and nothing more
        started = time.monotonic()
        status, headers, body = _read_answer(s)
        assert status == 408 and headers["connection"] == "close"
        assert json.loads(body)["error"]["code"] == "timeout"
        assert 0.3 < time.monotonic() - started < 3
        assert _closed(s, 2)


def test_a_connection_that_never_sends_anything_is_closed_after_the_header_deadline(port: int) -> None:
    with _connect(port) as s:
        started = time.monotonic()
        s.settimeout(3)
        assert s.recv(100) == b""  # closed without an answer: there was no request to answer
        assert 0.3 < time.monotonic() - started < 3


def test_a_body_that_does_not_arrive_in_time_is_answered_408_and_the_connection_closed(port: int) -> None:
    with _connect(port) as s:
        s.sendall(_request(body=b"x" * 100)[:-60])  # headers complete, 40 of 100 body bytes
        status, _, body = _read_answer(s)
        assert status == 408
        assert "body" in json.loads(body)["error"]["message"]
        assert _closed(s, 2)


def test_oversized_headers_are_answered_431(port: int) -> None:
    with _connect(port) as s:
        s.sendall(b"GET / HTTP/1.1\r\nhost: t\r\n")
        filler = b"x-filler: " + b"a" * 1000 + b"\r\n"
        for _ in range(connections.MAX_HEADER_BYTES // len(filler) + 2):
            s.sendall(filler)
        assert _read_answer(s)[0] == 431
        assert _closed(s, 2)


def test_a_large_body_sent_with_its_headers_is_not_taken_for_large_headers(port: int) -> None:
    with _connect(port) as s:
        body = b"1" * (200 * 1024)
        s.sendall(_request(body=body))
        status, _, answer = _read_answer(s)
        assert status == 200 and json.loads(answer) == {"received": len(body)}


def test_a_kept_alive_connection_waits_for_its_next_request_under_the_header_deadline(port: int) -> None:
    with _connect(port) as s:
        for _ in range(3):
            s.sendall(_request(body=b"{}"))
            assert _read_answer(s)[0] == 200
        time.sleep(0.2)  # within the deadline: still open
        s.sendall(_request(body=b"{}"))
        assert _read_answer(s)[0] == 200
        started = time.monotonic()
        s.settimeout(3)
        assert s.recv(100) == b""  # idle past the (shortened) header deadline: closed without a word
        assert time.monotonic() - started < 2


def test_beyond_the_cap_the_longest_idle_connection_is_closed_for_a_new_one(
    port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connections, "max_connections", lambda: 4)
    monkeypatch.setattr(connections, "HEADER_TIMEOUT_S", 10.0)
    idle = [_connect(port) for _ in range(4)]
    for s in idle:
        s.sendall(_request(body=b"{}"))
        assert _read_answer(s)[0] == 200  # now idle, kept alive; the first is the longest idle
        time.sleep(0.05)
    with _connect(port) as newcomer:
        newcomer.sendall(_request(body=b"{}"))
        assert _read_answer(newcomer)[0] == 200
        assert _closed(idle[0], 2), "the longest-idle connection was kept"
        idle[-1].sendall(_request(body=b"{}"))  # the most recent one was kept
        assert _read_answer(idle[-1])[0] == 200
    for s in idle:
        s.close()


def test_beyond_the_cap_with_every_connection_busy_the_new_one_is_answered_503(
    port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connections, "max_connections", lambda: 4)
    monkeypatch.setattr(connections, "BODY_TIMEOUT_S", 10.0)
    busy = [_connect(port) for _ in range(4)]
    for s in busy:
        s.sendall(_request(body=b"x" * 10)[:-5])  # a request in progress: its body is still coming
    time.sleep(0.2)
    with _connect(port) as newcomer:
        status, headers, body = _read_answer(newcomer)
        assert status == 503 and headers["connection"] == "close"
        assert json.loads(body)["error"]["code"] == "unavailable"
    for s in busy:
        s.sendall(b"x" * 5)  # the busy ones were left alone and finish
        assert _read_answer(s)[0] == 200
        s.close()


def test_an_unexpected_exception_is_a_json_500_with_a_request_id_and_the_connection_stays_open(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="mandate.server"), _connect(port) as s:
        s.sendall(_request("/boom", b"{}"))
        status, headers, body = _read_answer(s)
        error: dict[str, Any] = json.loads(body)["error"]
        assert status == 500 and headers["content-type"] == "application/json"
        assert error["code"] == "internal" and error["request_id"] == headers["x-request-id"]
        assert "connection" not in headers
        s.sendall(_request(body=b"{}"))  # the same connection answers the next request
        assert _read_answer(s)[0] == 200
    logged = [r for r in caplog.records if r.getMessage() == "unhandled exception"]
    assert len(logged) == 1
    assert logged[0].request_id == error["request_id"]  # type: ignore[attr-defined]  # an `extra` field
    assert logged[0].exc_info is not None and "a bug no handler knows" in str(logged[0].exc_info[1])


def test_the_app_answers_unexpected_exceptions_itself() -> None:
    app = create_app("postgresql://unused@127.0.0.1:9/unused")
    assert any(m.cls is LastResort for m in app.user_middleware)  # type: ignore[comparison-overlap]  # starlette types cls as a factory
