"""What the synchronous and the asynchronous client share when they are made: their settings, checked once, and
the httpx client each opens with them (`_open`: `httpx.Client` or `httpx.AsyncClient`)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar
from uuid import UUID

import httpx

from mandate.client import _wire

TransportT = TypeVar("TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)


class ClientBase(Generic[TransportT]):
    """The constructor of `MandateClient` and `AsyncMandateClient` (their docstrings say what each argument does)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:3000",
        *,
        organization_id: str | UUID | None = None,
        domain: str | None = None,
        token: str | None = None,
        timeout: float | httpx.Timeout = _wire.DEFAULT_TIMEOUT_S,
        retries: int = 2,
        backoff: float = 0.25,
        transport: TransportT | None = None,
    ) -> None:
        config = _wire.settings(base_url, organization_id, domain, retries, backoff)
        self.base_url, self.organization_id, self.domain = config.base_url, config.organization_id, config.domain
        self._retry = config.retry
        self._http = self._open(
            base_url=self.base_url, headers=_wire.headers(token), timeout=timeout, transport=transport
        )
        self._timeout: httpx.Timeout = self._http.timeout
        self._attach()

    def _open(self, **options: Any) -> Any:  # pragma: no cover - each client opens its own
        raise NotImplementedError

    def _attach(self) -> None:  # pragma: no cover - each client attaches its own
        raise NotImplementedError
