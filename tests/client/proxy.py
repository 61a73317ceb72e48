"""A loopback TCP proxy that loses answers: a fake at the process edge, in front of a real server.

For its first `drops` connections it forwards the request, waits for the server's complete answer — so the server
has done whatever the request asked — and then closes the client's connection without passing the answer on, as a
network failure after the write would. Later connections are piped through unchanged.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


def _read_message(sock: socket.socket) -> bytes:
    """One HTTP/1.1 message with a Content-Length body (what httpx sends and uvicorn answers here)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


class DroppingProxy:
    def __init__(self, upstream_port: int, drops: int = 1) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.drops = drops
        self.connections = 0
        self.dropped = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # accept() wakes up to notice close()
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._closing = threading.Event()
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def __enter__(self) -> DroppingProxy:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._closing.set()
        self._accepting.join(timeout=5)
        self._listener.close()
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)
        for sock in self._sockets:
            sock.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            self.connections += 1
            drop = self.dropped < self.drops
            if drop:
                self.dropped += 1
            thread = threading.Thread(target=self._drop if drop else self._pipe, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _upstream(self) -> socket.socket:
        sock = socket.create_connection(self.upstream)
        self._sockets.append(sock)
        return sock

    def _drop(self, client: socket.socket) -> None:
        self._sockets.append(client)
        request = _read_message(client)
        upstream = self._upstream()
        upstream.sendall(request)
        _read_message(upstream)  # the server has answered: whatever it stored is stored
        upstream.close()
        client.close()  # …and the answer is lost

    def _pipe(self, client: socket.socket) -> None:
        self._sockets.append(client)
        upstream = self._upstream()
        back = threading.Thread(target=self._copy, args=(upstream, client), daemon=True)
        self._threads.append(back)
        back.start()
        self._copy(client, upstream)

    @staticmethod
    def _copy(source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)
