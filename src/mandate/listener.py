"""The listening socket of a server (`mandate serve`, `mandate demo`): bound first, so a busy port is refused in a
sentence before anything else starts."""

from __future__ import annotations

import errno
import socket

from mandate.errors import MandateError


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on `host`:`port` (0 picks a free port); MandateError naming what to do when it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise MandateError(
                f"port {port} on {host} is already in use (another `mandate demo` or `mandate serve`?); "
                "stop it, choose another with --port, or pass --port 0 to pick a free one"
            ) from None
        raise MandateError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    except (OverflowError, UnicodeError) as exc:
        sock.close()
        raise MandateError(f"cannot listen on {host}:{port}: {exc}") from None
    sock.listen(128)
    return sock
