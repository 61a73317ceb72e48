"""`web.inputs.JsonBodyRoute` fails closed: built for serving without the app's `authorize` among its dependencies, it
refuses every request; built with it, it runs it first. (On the served app, tests/web/test_access.py checks both
ingestion routes with every role, and tests/web/test_api.py that they skip FastAPI's dependency machinery.)"""

from __future__ import annotations

import asyncio

import pytest
from fastapi import Depends, Request
from fastapi.responses import Response

from mandate.web import access
from mandate.web.api import DecisionBody
from mandate.web.errors import ApiError
from mandate.web.inputs import JsonBodyRoute, require_json

SCOPE = {"type": "http", "method": "POST", "path": "/x", "headers": [], "query_string": b""}


async def endpoint(request: Request, body: DecisionBody) -> Response:
    raise AssertionError("not reached")


def test_a_json_body_route_built_without_the_access_rule_refuses_every_request() -> None:
    route = JsonBodyRoute("/x", endpoint, methods=["POST"], dependencies=[Depends(require_json)])
    with pytest.raises(ApiError) as refused:
        asyncio.run(route.get_route_handler()(Request(SCOPE)))
    assert refused.value.status == 403 and "access rule" in str(refused.value)


def test_a_json_body_route_runs_the_access_rule_first(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []

    async def authorize(request: Request) -> None:
        ran.append("authorize")
        raise ApiError(403, "forbidden", "refused by the rule")

    monkeypatch.setattr("mandate.web.inputs.authorize", authorize)
    assert access.authorize is not authorize
    route = JsonBodyRoute("/x", endpoint, methods=["POST"], dependencies=[Depends(authorize), Depends(require_json)])
    with pytest.raises(ApiError, match="refused by the rule"):
        asyncio.run(route.get_route_handler()(Request(SCOPE)))
    assert ran == ["authorize"]


def test_a_json_body_route_refuses_what_it_cannot_run() -> None:
    async def two(request: Request, body: DecisionBody, extra: int) -> Response:
        raise AssertionError("not reached")

    with pytest.raises(TypeError, match="takes \\(request, body\\)"):
        JsonBodyRoute("/x", two, methods=["POST"], dependencies=[Depends(require_json)])
    with pytest.raises(TypeError, match="needs the require_json dependency"):
        JsonBodyRoute("/x", endpoint, methods=["POST"])
