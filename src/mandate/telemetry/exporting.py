"""Tracer and meter providers from the OTEL_* environment: OTLP over HTTP/protobuf, the console, or nothing.

The providers are the server's own (never installed as the process-wide globals), so that an application that
embeds Mandate keeps its own; the OpenTelemetry SDK reads the rest of the standard variables itself (endpoints,
headers, timeouts, sampler, batch sizes, export interval).
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

import mandate
from mandate.telemetry import exporter


def resource(environ: Mapping[str, str]) -> Resource:
    """`service.name` mandate and `service.version`, unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say."""
    attributes: dict[str, str] = {"service.version": mandate.__version__}
    if not environ.get("OTEL_SERVICE_NAME") and "service.name=" not in environ.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        attributes["service.name"] = "mandate"
    return Resource.create(attributes)


def providers(environ: Mapping[str, str]) -> tuple[TracerProvider, MeterProvider]:
    res = resource(environ)
    tracer_provider = TracerProvider(resource=res)
    span_exporter: SpanExporter | None = {"otlp": OTLPSpanExporter, "console": ConsoleSpanExporter}.get(
        exporter(environ, "OTEL_TRACES_EXPORTER"), lambda: None
    )()
    if span_exporter is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    readers: list[MetricReader] = []
    kind = exporter(environ, "OTEL_METRICS_EXPORTER")
    if kind == "otlp":
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    elif kind == "console":
        readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
    return tracer_provider, MeterProvider(resource=res, metric_readers=readers)
