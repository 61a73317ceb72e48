"""OpenTelemetry: one span per decision (continuing the agent's trace), the metrics, and the switch.

Spans and metrics are read with the SDK's in-memory exporter and reader; one test exports over OTLP/HTTP to a
loopback receiver that decodes the protobuf (tests/telemetry/conftest.py), configured only by OTEL_* variables.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mandate.client import MandateClient
from mandate.errors import ConfigError
from mandate.telemetry import configured, from_environment
from mandate.telemetry.instruments import Telemetry
from tests.telemetry.conftest import ORG, Receiver

DROP = {
    "organization_id": ORG,
    "domain_name": "config-management",
    "intent": "database.drop_table",
    "stage": "pre_commit",
    "actor": "pause-escalation-agent",
    "target": "production.users",
    "context": {"risk_level": "critical", "backup_first": False, "reversible": False},
    "scope": {"service": "db-admin-tool", "agent": "pause-escalation-agent", "environment": "production"},
}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
OPT_IN = {"OTEL_SEMCONV_STABILITY_OPT_IN": "http,gen_ai_latest_experimental"}


class InMemory:
    def __init__(self, environ: dict[str, str]) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.telemetry = Telemetry(tracer_provider, MeterProvider(metric_readers=[self.reader]), environ=environ)

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


def decide(client: Any, **overrides: Any) -> dict[str, Any]:
    r = client.post("/api/decisions", json={**DROP, "decision_id": str(uuid.uuid4()), **overrides}, headers={})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


# -- the switch -------------------------------------------------------------------------------------------------


def test_telemetry_is_off_unless_an_exporter_is_configured() -> None:
    assert configured({}) is False
    assert configured({"OTEL_SERVICE_NAME": "mandate"}) is False
    assert configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) is True
    assert configured({"OTEL_TRACES_EXPORTER": "console"}) is True
    assert configured({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}) is False
    assert configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}) is False
    assert from_environment({}) is None


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "PROTOCOL"),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
    ],
)
def test_an_unsupported_configuration_fails_loudly_naming_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        configured(environ)


# -- spans ------------------------------------------------------------------------------------------------------


def test_one_guardrail_span_per_decision_continues_the_agents_trace(serve: Callable[..., Any]) -> None:
    otel = InMemory(OPT_IN)
    with serve(telemetry=otel.telemetry) as api:
        r = api.client.post(
            "/api/decisions",
            json={**DROP, "decision_id": str(uuid.uuid4())},
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
        )
        body = r.json()
    [span] = otel.finished()
    assert span.name == "apply_guardrail Mandate"
    assert span.kind.name == "INTERNAL"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_ID
    a = dict(span.attributes or {})
    assert a["gen_ai.operation.name"] == "apply_guardrail"
    assert a["gen_ai.security.decision.type"] == "deny"
    assert a["gen_ai.security.target.type"] == "tool_call"
    assert a["gen_ai.security.decision.reason"] == "policy"
    assert a["gen_ai.security.policy.id"] == "policy-block-unbackedup-drops-v1"
    assert a["gen_ai.security.external_event_id"] == body["decision_id"]
    assert a["gen_ai.guardian.name"] == "Mandate"
    assert a["gen_ai.agent.id"] == "pause-escalation-agent"
    assert a["mandate.decision.id"] == body["decision_id"]
    assert a["mandate.verdict"] == "BLOCK"
    assert a["mandate.verdict.id"] == body["verdict_id"]
    assert a["mandate.policy.id"] == "policy-block-unbackedup-drops-v1"
    assert a["mandate.spec"] == "spec-pre-commit-database-drop-table-v1@1"
    assert a["mandate.scope.id"] == "config-management.prod.db-admin-tool"
    assert a["mandate.owning_team"] == "dba-team"
    assert a["mandate.snapshot.id"] == body["snapshot"]["snapshot_id"]
    assert a["mandate.snapshot.version"] == 1
    assert a["mandate.domain"] == "config-management"
    assert a["mandate.idempotent_replay"] is False
    # Never the signal values, the actor, the target or the sentence (which holds values).
    assert not any("backup_first" in str(v) or "production.users" in str(v) for v in a.values())
    assert span.end_time is not None and span.start_time is not None and span.end_time > span.start_time


def test_without_the_opt_in_the_span_has_no_experimental_genai_names(serve: Callable[..., Any]) -> None:
    otel = InMemory({})
    with serve(telemetry=otel.telemetry) as api:
        decide(api.client)
    [span] = otel.finished()
    assert span.name == "mandate.decision"
    assert span.parent is None  # no traceparent: a new trace
    attributes = dict(span.attributes or {})
    assert attributes["mandate.verdict"] == "BLOCK"
    assert not [k for k in attributes if k.startswith("gen_ai.")]


def test_the_sdk_propagates_the_agents_current_span(serve: Callable[..., Any]) -> None:
    otel = InMemory(OPT_IN)
    agent_spans = InMemorySpanExporter()
    agent_provider = TracerProvider()
    agent_provider.add_span_processor(SimpleSpanProcessor(agent_spans))
    with serve(telemetry=otel.telemetry) as api:
        with (
            MandateClient(api.url, organization_id=ORG, domain="config-management", token=api.token) as mandate,
            agent_provider.get_tracer("agent").start_as_current_span("execute_tool drop_table") as tool_span,
        ):
            verdict = mandate.decide(
                DROP["intent"], DROP["stage"], actor=DROP["actor"], target=DROP["target"],
                context=DROP["context"], scope=DROP["scope"],
            )  # fmt: skip
        outside = MandateClient(api.url, organization_id=ORG, domain="config-management", token=api.token)
        with outside:
            outside.decide(
                DROP["intent"], DROP["stage"], actor=DROP["actor"], target=DROP["target"],
                context=DROP["context"], scope=DROP["scope"],
            )  # fmt: skip
    first, second = sorted(otel.finished(), key=lambda s: s.start_time or 0)
    assert first.attributes is not None and first.attributes["mandate.decision.id"] == str(verdict.decision_id)
    assert first.context.trace_id == tool_span.get_span_context().trace_id
    assert first.parent is not None and first.parent.span_id == tool_span.get_span_context().span_id
    assert second.parent is None  # no current span in the agent: nothing propagated


def test_authzen_decisions_and_idempotent_resends_get_a_span_each(serve: Callable[..., Any]) -> None:
    otel = InMemory(OPT_IN)
    decision_id = str(uuid.uuid4())
    evaluation = {
        "subject": {"type": "agent", "id": "pause-escalation-agent"},
        "action": {"name": "database.drop_table"},
        "resource": {"type": "table", "id": "production.users"},
        "context": {
            "domain": "config-management",
            "decision_id": decision_id,
            "scope": {"service": "db-admin-tool", "environment": "production"},
            "signals": {"risk_level": "low", "backup_first": True, "reversible": True},
        },
    }
    with serve(telemetry=otel.telemetry) as api:
        for _ in range(2):
            assert api.client.post("/access/v1/evaluation", json=evaluation).json()["decision"] is True
    spans = otel.finished()
    assert [dict(s.attributes or {})["gen_ai.security.decision.type"] for s in spans] == ["allow", "allow"]
    assert [dict(s.attributes or {})["mandate.idempotent_replay"] for s in spans] == [False, True]
    assert all("gen_ai.security.decision.reason" not in (s.attributes or {}) for s in spans)  # allow: no reason


# -- metrics ------------------------------------------------------------------------------------------------------


def test_metrics_count_decisions_by_verdict_and_domain_and_measure_latency_batches_and_pool_waits(
    serve: Callable[..., Any],
) -> None:
    otel = InMemory({})
    with serve(telemetry=otel.telemetry) as api:
        for _ in range(3):
            decide(api.client)
        decide(api.client, context={"risk_level": "low", "backup_first": True, "reversible": True})
        counts = {
            (p.attributes["mandate.verdict"], p.attributes["mandate.domain"]): p.value
            for p in otel.points("mandate.decisions")
        }
        assert counts == {("BLOCK", "config-management"): 3, ("ALLOW", "config-management"): 1}
        durations = otel.points("mandate.decision.duration")
        assert sum(p.count for p in durations) == 4
        assert all(0 < p.sum < 10 for p in durations)
        batches = otel.points("mandate.group_commit.batch_size")
        assert sum(p.sum for p in batches) == 4  # every decision was in exactly one committed batch
        [wait] = otel.points("mandate.db.pool.wait_time")
        assert wait.value >= 0
        [waiting] = otel.points("mandate.db.pool.requests_waiting")
        assert waiting.value == 0


# -- a real OTLP/HTTP export ----------------------------------------------------------------------------------------


def test_spans_and_metrics_reach_an_otlp_http_receiver_configured_by_the_environment(
    serve: Callable[..., Any], otlp_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_receiver.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "mandate-under-test")
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    with serve() as api:  # no telemetry argument: from the OTEL_* variables
        body = decide(api.client)
    # Stopping the server shut the providers down, which exported what was pending.
    spans = otlp_receiver.spans()
    assert [s.name for s in spans] == ["apply_guardrail Mandate"]
    attributes = {kv.key: kv.value for kv in spans[0].attributes}
    assert attributes["mandate.decision.id"].string_value == body["decision_id"]
    assert attributes["gen_ai.security.decision.type"].string_value == "deny"
    resource = {kv.key: kv.value.string_value for kv in otlp_receiver.traces[0].resource_spans[0].resource.attributes}
    assert resource["service.name"] == "mandate-under-test"
    assert {
        "mandate.decisions",
        "mandate.decision.duration",
        "mandate.group_commit.batch_size",
        "mandate.db.pool.wait_time",
    } <= otlp_receiver.metric_names()
    assert otlp_receiver.content_types == {"application/x-protobuf"}
