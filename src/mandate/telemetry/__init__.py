"""OpenTelemetry for the server: one span per decision, decision metrics, group-commit and pool metrics.

Off unless the standard OpenTelemetry environment variables configure an exporter, and then it needs the
optional extra `mandate-control-plane[otel]` (a configured exporter without it fails at startup, naming the
extra). Read once, when the app is built:

| variable                                                          | effect                                          |
|-------------------------------------------------------------------|-------------------------------------------------|
| OTEL_EXPORTER_OTLP_ENDPOINT (or …_TRACES_ENDPOINT, …_METRICS_ENDPOINT) | turns it on; OTLP over HTTP/protobuf to there |
| OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER                       | `otlp` (default once on), `console` or `none`   |
| OTEL_SDK_DISABLED=true                                            | off, whatever else is set                       |
| OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, OTEL_BSP_*, OTEL_METRIC_EXPORT_INTERVAL, OTEL_EXPORTER_OTLP_HEADERS/TIMEOUT | as the OpenTelemetry SDK defines them |
| OTEL_SEMCONV_STABILITY_OPT_IN containing `gen_ai_latest_experimental` | the span also carries the GenAI guardrail conventions (experimental names) |

Only `http/protobuf` is supported as OTLP protocol (OTEL_EXPORTER_OTLP_PROTOCOL); another is refused at startup.
What is emitted is described in `mandate.telemetry.instruments` and docs/integrations.md#opentelemetry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mandate.errors import ConfigError

if TYPE_CHECKING:
    from mandate.telemetry.instruments import Telemetry

__all__ = ["EXTRA", "configured", "from_environment"]

EXTRA = "mandate-control-plane[otel]"
ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
EXPORTERS = ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER")
PROTOCOLS = ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")
EXPORTER_NAMES = frozenset({"otlp", "console", "none"})


def exporter(environ: Mapping[str, str], variable: str) -> str:
    """`otlp`, `console` or `none` for OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER (default `otlp`)."""
    value = environ.get(variable, "").strip().lower() or "otlp"
    if value not in EXPORTER_NAMES:
        raise ConfigError(f"{variable}={value!r} is not supported: use otlp, console or none")
    return value


def configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the OTEL_* variables ask for telemetry (ConfigError when they ask for something unsupported)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if not any(env.get(v) for v in (*ENDPOINTS, *EXPORTERS)):
        return False
    for variable in PROTOCOLS:
        protocol = env.get(variable, "").strip()
        if protocol and protocol != "http/protobuf":
            raise ConfigError(f"{variable}={protocol!r} is not supported: Mandate exports OTLP as http/protobuf")
    return any(exporter(env, v) != "none" for v in EXPORTERS)


def from_environment(environ: Mapping[str, str] | None = None) -> Telemetry | None:
    """The server's telemetry as the environment configures it; None when it is off."""
    env = os.environ if environ is None else environ
    if not configured(env):
        return None
    try:
        from mandate.telemetry.exporting import providers
        from mandate.telemetry.instruments import Telemetry
    except ImportError as exc:
        raise ConfigError(
            f"OpenTelemetry is configured (OTEL_* variables) but not installed ({exc.name} is missing): "
            f"pip install '{EXTRA}', or unset the OTEL_* variables"
        ) from None
    tracer_provider, meter_provider = providers(env)
    return Telemetry(tracer_provider, meter_provider, environ=env, owned=True)
