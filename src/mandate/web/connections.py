"""Connection limits of `mandate serve`: what keeps one client — idle, slow, or many — from exhausting the server.

uvicorn (with httptools) closes a keep-alive connection that stays idle for `IDLE_TIMEOUT_S` after a response, and
nothing else: a connection that never sends a request, or sends its headers or body a byte at a time, stays open
forever, and enough of them (1,100 from one client against the common limit of 1,024 descriptors) make every other
request fail. `BoundedHttp`, the protocol `mandate serve` runs, adds three bounds:

- **headers**: a request's headers must be complete within `HEADER_TIMEOUT_S` of the connection opening (or of the
  previous response) and be at most `MAX_HEADER_BYTES` long → 408 / 431, connection closed (a connection that
  sent nothing by then is closed without an answer);
- **body**: the body must be complete within `BODY_TIMEOUT_S` of the headers → 408, connection closed;
- **connections**: at most `max_connections()` per process — the descriptor limit less `RESERVED_DESCRIPTORS` for
  the pool, the log, files and the sockets accepted in one go, and never more than `MAX_CONNECTIONS`. A connection
  beyond the cap closes the longest-idle connections that have no request in progress (idle keep-alive, or still
  sending headers); only when every connection is busy with a request is the new one answered 503 and closed.

So a flood of idle or slow sockets costs only its own connections, and requests keep being answered. `server_options`
raises the process's soft descriptor limit to its hard limit, and gives uvicorn these options.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0
IDLE_TIMEOUT_S = 5  # uvicorn's timeout_keep_alive
MAX_HEADER_BYTES = 32 * 1024
MAX_CONNECTIONS = 4096
RESERVED_DESCRIPTORS = 160  # pool, LISTEN, lock watch, log, static files, and asyncio accepts up to 100 per wakeup
_REPORT_EVERY_S = 10.0

log = logging.getLogger("mandate.server")


def max_connections() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(16, min(MAX_CONNECTIONS, soft - RESERVED_DESCRIPTORS))


def server_options() -> dict[str, object]:
    """Raise the soft descriptor limit to the hard one; uvicorn's options for `BoundedHttp`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return {"http": f"{__name__}:BoundedHttp", "timeout_keep_alive": IDLE_TIMEOUT_S}


def _answer(status: int, reason: str, code: str, message: str) -> bytes:
    body = orjson.dumps({"error": {"code": code, "message": message, "problems": []}})
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


HEADERS_LATE = _answer(
    408, "Request Timeout", "timeout", f"the request headers did not arrive within {HEADER_TIMEOUT_S:g} s"
)
BODY_LATE = _answer(408, "Request Timeout", "timeout", f"the request body did not arrive within {BODY_TIMEOUT_S:g} s")
HEADERS_TOO_LARGE = _answer(
    431, "Request Header Fields Too Large", "too_large", f"the request headers exceed {MAX_HEADER_BYTES} bytes"
)
FULL = _answer(503, "Service Unavailable", "unavailable", "the server is at its connection limit; retry")


class _Evictions:
    """How many connections the cap closed, reported in the log at most every _REPORT_EVERY_S."""

    closed = 0
    refused = 0
    reported_at = float("-inf")

    @classmethod
    def report(cls, now: float, cap: int) -> None:
        if now - cls.reported_at >= _REPORT_EVERY_S and (cls.closed or cls.refused):
            log.warning(
                "connection cap reached: closed idle connections to make room",
                extra={"cap": cap, "closed_idle": cls.closed, "refused": cls.refused},
            )
            cls.closed = cls.refused = 0
            cls.reported_at = now


class BoundedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines, a header size limit and a connection cap."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_headers = True
        self._header_bytes = 0
        self._active_at = 0.0
        self._cap = max_connections()

    # -- deadlines -------------------------------------------------------------------------------------------------

    def _arm(self, seconds: float, answer: bytes) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._give_up, answer)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _give_up(self, answer: bytes, *, always: bool = False) -> None:
        """Answer the request that was begun (unless its response has) and close. A connection that has not sent a
        byte of a request (new, or idle between requests) is closed without a word, as uvicorn closes an idle
        keep-alive connection: a client that sends its next request at that moment just opens another."""
        self._deadline = None
        if self.transport.is_closing():
            return
        begun = always or not self._reading_headers or self._header_bytes > 0
        if begun and (self.cycle is None or self.cycle.response_complete or not self.cycle.response_started):
            self.transport.write(answer)
        self.transport.close()

    def _expect_request(self) -> None:
        self._reading_headers = True
        self._header_bytes = 0
        self._arm(HEADER_TIMEOUT_S, HEADERS_LATE)

    # -- the protocol ----------------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's
        super().connection_made(transport)
        self._active_at = self.loop.time()
        self._expect_request()
        self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._active_at = self.loop.time()
        counting = self._reading_headers
        super().data_received(data)
        if counting and self._reading_headers and not self.transport.is_closing():
            # Still in the headers after this chunk (a chunk that completed them may carry body bytes too).
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES:
                self._give_up(HEADERS_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers = True

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        super().on_headers_complete()
        self._arm(BODY_TIMEOUT_S, BODY_LATE)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._expect_request()

    # -- the cap ---------------------------------------------------------------------------------------------------

    def _idle(self) -> bool:
        return (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing()

    def _make_room(self) -> None:
        open_ = [c for c in self.connections if isinstance(c, BoundedHttp) and not c.transport.is_closing()]
        excess = len(open_) - self._cap
        if excess <= 0:
            return
        # Close a tenth of the cap at once, so that a flood does not scan every connection for every new one.
        idle = sorted((c for c in open_ if c is not self and c._idle()), key=lambda c: c._active_at)
        victims = idle[: excess + self._cap // 10]
        for victim in victims:
            victim._disarm()
            victim.transport.close()
        _Evictions.closed += len(victims)
        if len(victims) < excess:  # every other connection is busy with a request: this one must go
            _Evictions.refused += 1
            self._give_up(FULL, always=True)
        _Evictions.report(self.loop.time(), self._cap)
