"""Trace context for every request the clients send: when the agent has OpenTelemetry (its API package) and a
current span, the request carries W3C `traceparent` (through the agent's configured propagators), so Mandate's
decision span joins the agent's trace. Without OpenTelemetry installed, nothing is added and nothing is imported
but this module."""

from __future__ import annotations

import httpx

try:
    from opentelemetry import propagate
except ImportError:  # the agent does not use OpenTelemetry
    propagate = None  # type: ignore[assignment]  # the module is optional


def inject(request: httpx.Request) -> None:
    """An httpx request hook: add the current context's propagation headers (none outside a span)."""
    if propagate is None:
        return
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    request.headers.update(carrier)


async def ainject(request: httpx.Request) -> None:
    """`inject` for the async client, whose hooks must be coroutines."""
    inject(request)
