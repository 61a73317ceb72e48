"""What the server emits when telemetry is on (`mandate.telemetry` says when).

**One span per decision**, for every decision answered (`POST /api/decisions` and AuthZEN alike, new or an
idempotent re-send), from the moment the request was received until its transaction committed. It is a child of
the agent's span when the request carries W3C `traceparent` (`ContinueTrace`), kind INTERNAL, and carries:

- always, under `mandate.*`: `mandate.decision.id` (the external reference), `mandate.decision.stage`,
  `mandate.verdict`, `mandate.verdict.id`, `mandate.verdict.reason`, `mandate.policy.id` (the winning policy),
  `mandate.spec` (`spec_id@version`), `mandate.scope.id`, `mandate.owning_team`, `mandate.snapshot.id`,
  `mandate.snapshot.version`, `mandate.organization.id`, `mandate.domain`, `mandate.intent`,
  `mandate.idempotent_replay`. Never signal values, actor, target or free text.
- with `OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`: the GenAI security conventions' draft
  *apply guardrail* span (`GENAI_CONVENTIONS`): named `apply_guardrail Mandate`, `gen_ai.operation.name`
  `apply_guardrail`, `gen_ai.security.decision.type` (ALLOW → `allow`, BLOCK and PAUSE → `deny`: the operation
  is halted; OBSERVE → `audit`), `gen_ai.security.target.type` `tool_call`, `gen_ai.security.decision.reason` (the
  low-cardinality reason code — `policy`, `tie`, `default`, `gap`, `error` — when not `allow`; never the sentence,
  which holds signal values), `gen_ai.security.policy.id` and `.version` (the winning policy and its snapshot
  version), `gen_ai.security.external_event_id` (the decision id), `gen_ai.guardian.*` (Mandate),
  `gen_ai.agent.id` (the scope's agent). Without the opt-in the span is named `mandate.decision` and carries
  only `mandate.*`, as those conventions ask of instrumentations while their names are experimental.

**Metrics** (meter `mandate`): `mandate.decisions` (counter, by `mandate.verdict` and `mandate.domain`),
`mandate.decision.duration` (histogram, seconds, same attributes: received → committed),
`mandate.group_commit.batch_size` (histogram: decisions per committed transaction),
`mandate.db.pool.wait_time` (counter, seconds spent waiting for a pooled connection) and
`mandate.db.pool.requests_waiting` (gauge).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from opentelemetry.context import attach, detach
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from psycopg_pool import AsyncConnectionPool
from starlette.types import ASGIApp, Receive, Scope, Send

import mandate
from mandate.group_commit import GroupCommit, Waiting
from mandate.service import IngestResult, Prepared
from mandate.vocabulary import Row

GENAI_CONVENTIONS = (
    "OpenTelemetry semantic conventions, GenAI security: the `apply_guardrail` span "
    "(docs/gen-ai/gen-ai-security.md, status Development, semantic-conventions commit 0cc60fd)"
)
OPT_IN = "gen_ai_latest_experimental"
DECISION_TYPE = {"ALLOW": "allow", "BLOCK": "deny", "PAUSE": "deny", "OBSERVE": "audit"}
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
_PROPAGATOR = TraceContextTextMapPropagator()


def opted_in(environ: Mapping[str, str]) -> bool:
    """OTEL_SEMCONV_STABILITY_OPT_IN (a comma-separated list) holds `gen_ai_latest_experimental`."""
    return OPT_IN in (v.strip() for v in environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "").split(","))


class Telemetry:
    """The tracer and instruments of one server. `owned`: built from the environment, so shut down with the app."""

    def __init__(
        self,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        *,
        environ: Mapping[str, str],
        owned: bool = False,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.owned = owned
        self.genai = opted_in(environ)
        self.tracer = tracer_provider.get_tracer("mandate", mandate.__version__)
        meter = meter_provider.get_meter("mandate", mandate.__version__)
        self.meter = meter
        self.decisions = meter.create_counter("mandate.decisions", "{decision}", "decisions answered, by verdict")
        self.duration = meter.create_histogram(
            "mandate.decision.duration",
            "s",
            "from receiving a decision to committing it",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.batch_size = meter.create_histogram(
            "mandate.group_commit.batch_size",
            "{decision}",
            "decisions per committed group-commit transaction",
            explicit_bucket_boundaries_advisory=BATCH_BUCKETS,
        )
        self._pools: list[AsyncConnectionPool[Any]] = []
        meter.create_observable_counter(
            "mandate.db.pool.wait_time", [self._wait_time], "s", "time requests waited for a pooled connection"
        )
        meter.create_observable_gauge(
            "mandate.db.pool.requests_waiting", [self._waiting], "{request}", "requests waiting for a connection"
        )

    def group_commit(self, pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]], **options: Any) -> GroupCommit:
        """The server's writer, traced; its pool's waits are measured."""
        self._pools.append(pool)
        return TracedGroupCommit(pool, telemetry=self, **options)

    def _wait_time(self, _options: CallbackOptions) -> Iterable[Observation]:
        for pool in self._pools:
            yield Observation(pool.get_stats().get("requests_wait_ms", 0) / 1000, {"mandate.pool": pool.name})

    def _waiting(self, _options: CallbackOptions) -> Iterable[Observation]:
        for pool in self._pools:
            yield Observation(pool.get_stats().get("requests_waiting", 0), {"mandate.pool": pool.name})

    def decided(
        self, prepared: Prepared, result: IngestResult | None, start_ns: int, error: BaseException | None = None
    ) -> None:
        """Record one answered (or failed) decision: its span and its metrics."""
        end_ns = time.time_ns()
        e = result.evaluation_dict if result is not None else prepared.explanation
        verdict = str(e.get("verdict"))
        spec = e.get("spec") or {}
        snapshot = e.get("snapshot") or {}
        scope = e.get("scope") or {}
        req = prepared.req
        attributes: dict[str, Any] = {
            "mandate.decision.id": str(req.decision_id),
            "mandate.decision.stage": str(req.stage),
            "mandate.verdict": verdict,
            "mandate.verdict.id": str(result.verdict_id if result is not None else prepared.verdict_id),
            "mandate.verdict.reason": str(e.get("reason")),
            "mandate.organization.id": str(e.get("organization_id")),
            "mandate.domain": str(e.get("domain")),
            "mandate.intent": str(req.intent),
            "mandate.idempotent_replay": result is not None and not result.created,
        }
        optional = {
            "mandate.policy.id": e.get("winning_policy_id"),
            "mandate.spec": f"{spec['spec_id']}@{spec['version']}" if spec.get("spec_id") else None,
            "mandate.scope.id": scope.get("scope_id"),
            "mandate.owning_team": scope.get("owning_team"),
            "mandate.snapshot.id": snapshot.get("snapshot_id"),
            "mandate.snapshot.version": snapshot.get("version"),
        }
        attributes.update({k: v for k, v in optional.items() if v is not None})
        name = "mandate.decision"
        if self.genai:
            name = "apply_guardrail Mandate"
            attributes.update(self._genai(verdict, e, req.decision_id, req.scope))
        span = self.tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attributes, start_time=start_ns)
        if error is not None:
            span.set_attribute("error.type", type(error).__qualname__)
            span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
        span.end(end_time=end_ns)
        if error is None:
            metric_attributes = {"mandate.verdict": verdict, "mandate.domain": attributes["mandate.domain"]}
            self.decisions.add(1, metric_attributes)
            self.duration.record(max(0, end_ns - start_ns) / 1e9, metric_attributes)

    @staticmethod
    def _genai(verdict: str, e: Mapping[str, Any], decision_id: object, scope: Mapping[str, Any]) -> dict[str, Any]:
        decision_type = DECISION_TYPE.get(verdict, "deny")
        found: dict[str, Any] = {
            "gen_ai.operation.name": "apply_guardrail",
            "gen_ai.security.decision.type": decision_type,
            "gen_ai.security.target.type": "tool_call",
            "gen_ai.security.external_event_id": str(decision_id),
            "gen_ai.guardian.id": "mandate",
            "gen_ai.guardian.name": "Mandate",
            "gen_ai.guardian.provider.name": "mandate",
            "gen_ai.guardian.version": mandate.__version__,
        }
        if decision_type != "allow" and e.get("reason"):
            found["gen_ai.security.decision.reason"] = str(e["reason"])
        if e.get("winning_policy_id"):
            found["gen_ai.security.policy.id"] = str(e["winning_policy_id"])
            snapshot = e.get("snapshot") or {}
            if snapshot.get("version") is not None:
                found["gen_ai.security.policy.version"] = str(snapshot["version"])
        if scope.get("agent"):
            found["gen_ai.agent.id"] = str(scope["agent"])
        return found

    def flush(self) -> None:
        """Export what is pending; shut the providers down when they were built from the environment."""
        for provider in (self.tracer_provider, self.meter_provider):
            if self.owned and hasattr(provider, "shutdown"):
                provider.shutdown()
            elif hasattr(provider, "force_flush"):
                provider.force_flush()


class TracedGroupCommit(GroupCommit):
    """The group-commit writer, recording a span and metrics per decision and the size of each committed batch."""

    def __init__(
        self, pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]], *, telemetry: Telemetry, **options: Any
    ) -> None:
        super().__init__(pool, **options)
        self.telemetry = telemetry

    async def ingest(self, prepared: Prepared) -> IngestResult:
        received = prepared.params.get("received_at")
        start_ns = int(received.timestamp() * 1e9) if received is not None else time.time_ns()
        try:
            result = await super().ingest(prepared)
        except BaseException as exc:
            self.telemetry.decided(prepared, None, start_ns, exc)
            raise
        self.telemetry.decided(prepared, result, start_ns)
        return result

    async def _write(self, batch: list[Waiting]) -> None:
        batches, decisions = self.stats.batches, self.stats.decisions
        await super()._write(batch)
        # One committed transaction holding the whole batch (a batch retried one by one records each of those).
        if self.stats.batches == batches + 1 and self.stats.decisions == decisions + len(batch):
            self.telemetry.batch_size.record(len(batch))


class ContinueTrace:
    """Make the agent's W3C trace context (`traceparent`, `tracestate`) current while its request is served, so
    that the decision's span is a child of the agent's span. A pure ASGI middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope["headers"]
            if key in (b"traceparent", b"tracestate")
        }
        if "traceparent" not in carrier:
            await self.app(scope, receive, send)
            return
        token = attach(_PROPAGATOR.extract(carrier))
        try:
            await self.app(scope, receive, send)
        finally:
            detach(token)
