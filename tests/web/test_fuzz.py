"""Generated hostile input against a real server and database (issue 14), with fixed seeds and bounded budgets.

- Properties (hypothesis): arbitrary Unicode — NUL and lone surrogates included — in every string of a decision
  or an outcome is never answered 5xx, and a 4xx stores nothing (an attribution 422 stores only its rejection row).
- Schemathesis, against the OpenAPI document the server serves: every operation, then the decision route with
  organization and domain pinned so that cases reach the write path: zero 5xx, zero responses outside the
  documented statuses and models, nothing stored by a 4xx.

The budgets (cases per test) are the `RELIABILITY_*` constants; docs/reliability.md records sizes and timings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.helpers import scalar
from tests.web.conftest import LiveServer
from tests.web.test_api import CRITICAL_DROP, ORG, api, flat

__all__ = ["api"]  # the fixture, imported for the tests below

settings.register_profile(
    "reliability",
    derandomize=True,  # a fixed seed: the same cases on every run
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
RELIABILITY = settings.get_profile("reliability")
RELIABILITY_PROPERTY_CASES = 150
RELIABILITY_CASES_PER_OPERATION = 120
RELIABILITY_PINNED_CASES = 1400
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

HOSTILE = st.sampled_from(["\x00", "\udfff", "\ud800", "\U0001f600", "\u202e", "'", '"', "\\", "%00", "\n"])
TEXT = st.lists(st.one_of(st.characters(), HOSTILE), max_size=40).map("".join)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def _stored(url: str) -> tuple[int, int, int]:
    with psycopg.connect(url) as conn:
        return (
            scalar(conn, "SELECT count(*) FROM mandate.decision_events"),
            scalar(conn, "SELECT count(*) FROM mandate.audit_timeline_entries"),
            scalar(conn, "SELECT count(*) FROM mandate.decision_rejections"),
        )


def _send(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    # json.dumps writes a lone surrogate as its \\udfff escape, as a hostile client would
    return client.post(path, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


def _check(db_url: str, before: tuple[int, int, int], response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    after = _stored(db_url)
    if response.status_code >= 400:
        attribution = response.status_code == 422 and response.json().get("verdict") == "OBSERVE"
        assert after[:2] == before[:2], response.text  # no decision, no timeline entry
        assert after[2] == before[2] + (1 if attribution else 0)


FIELDS = ["organization_id", "domain_name", "intent", "stage", "actor", "target", "unstructured_context"]


@settings(RELIABILITY, max_examples=RELIABILITY_PROPERTY_CASES)
@given(field=st.sampled_from([*FIELDS, "context", "scope"]), text=TEXT, value=JSON_VALUE)
def test_any_unicode_in_a_decision_is_never_a_5xx_and_a_4xx_stores_nothing(
    api: LiveServer, field: str, text: str, value: Any
) -> None:
    body = flat(*CRITICAL_DROP)
    if field == "context":
        body["context"][text] = value
    elif field == "scope":
        body["scope"]["service"] = text
    else:
        body[field] = text
    before = _stored(api.database_url)
    _check(api.database_url, before, _send(api.client, "/api/decisions", body))


@settings(RELIABILITY, max_examples=RELIABILITY_PROPERTY_CASES)
@given(outcome=TEXT, details=st.dictionaries(TEXT, JSON_VALUE, max_size=4), stage=st.none() | TEXT)
def test_any_unicode_in_an_outcome_is_never_a_5xx_and_a_4xx_stores_nothing(
    api: LiveServer, outcome: str, details: dict[str, Any], stage: str | None
) -> None:
    decision = api.client.post("/api/decisions", json=flat(*CRITICAL_DROP)).json()["decision_id"]
    before = _stored(api.database_url)
    body = {"outcome": outcome, "details": details, **({"stage": stage} if stage is not None else {})}
    _check(api.database_url, before, _send(api.client, f"/api/decisions/{decision}/outcome", body))


# -- schemathesis ------------------------------------------------------------------------------------------------


@pytest.fixture
def schema(api: LiveServer) -> Iterator[Any]:
    loaded = schemathesis.openapi.from_dict(api.client.get("/openapi.json").json())
    loaded.config.update(base_url=api.url)
    yield loaded


def test_every_operation_of_the_served_openapi_holds_its_contract(api: LiveServer, schema: Any) -> None:
    cases = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(RELIABILITY, max_examples=RELIABILITY_CASES_PER_OPERATION)
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            nonlocal cases
            cases += 1
            before = _stored(api.database_url)
            response = case.call(base_url=api.url, timeout=10, headers={"authorization": f"Bearer {api.token}"})
            case.validate_response(response, checks=CHECKS)
            if response.status_code >= 400:
                after = _stored(api.database_url)
                assert after[:2] == before[:2], (case.method, case.path, response.text)

        run()
    print(f"schemathesis: {cases} cases over every operation")
    assert cases >= 1600


def test_decisions_with_organization_and_domain_pinned_reach_the_write_path(api: LiveServer, schema: Any) -> None:
    operation = schema["/api/decisions"]["POST"]
    statuses: dict[int, int] = {}

    @settings(RELIABILITY, max_examples=RELIABILITY_PINNED_CASES)
    @given(case=operation.as_strategy(), intent=st.sampled_from(["database.drop_table", "file.write", "x"]))
    def run(case: Any, intent: str) -> None:
        if isinstance(case.body, dict):
            case.body = {
                **case.body,
                "organization_id": ORG,
                "domain_name": "config-management",
                "intent": intent,
                "stage": "pre_commit",
            }
            case.body.pop("domain", None)
            if isinstance(case.body.get("scope"), dict):
                case.body["scope"] = {k: v for k, v in case.body["scope"].items() if k not in ("domain", "domain_name")}
                case.body["scope"]["organization_id"] = ORG
        before = _stored(api.database_url)
        response = case.call(base_url=api.url, timeout=10, headers={"authorization": f"Bearer {api.token}"})
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS)
        _check(api.database_url, before, httpx.Response(response.status_code, content=response.content))

    run()
    print(f"schemathesis (pinned): {sum(statuses.values())} cases, statuses {sorted(statuses.items())}")
    assert statuses.get(201, 0) >= 50  # cases did reach the write path
    assert not any(status >= 500 for status in statuses)
