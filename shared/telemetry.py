"""OpenTelemetry for every service, configured only through the standard OTEL_* variables:
OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and OTEL_TRACES_SAMPLER (read by the SDK), and
OTEL_TRACES_EXPORTER: `otlp` (the default: OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT, when it
is set; Jaeger in docker-compose), `zipkin` (to OTEL_EXPORTER_ZIPKIN_ENDPOINT; the local trace
UI of `make run`) or `none`.

Metrics are exposed for Prometheus to scrape at /metrics. Dossier attributes share one prefix,
defined here; personal data (names, ID numbers, phones, emails, addresses) is never an
attribute, an event or a label."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.metrics import Meter
from opentelemetry.sdk.environment_variables import OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Link, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

ATTRIBUTE_PREFIX = "onestop.dossier"


class DossierAttribute(StrEnum):
    CODE = f"{ATTRIBUTE_PREFIX}.code"
    PROCEDURE = f"{ATTRIBUTE_PREFIX}.procedure"
    RECEIVING_UNIT = f"{ATTRIBUTE_PREFIX}.receiving_unit"
    CURRENT_UNIT = f"{ATTRIBUTE_PREFIX}.current_unit"


# Which event or receipt field feeds which attribute; nothing else is ever copied.
_FIELDS = {
    "dossier_code": DossierAttribute.CODE,
    "procedure_code": DossierAttribute.PROCEDURE,
    "receiving_unit_code": DossierAttribute.RECEIVING_UNIT,
    "current_unit_code": DossierAttribute.CURRENT_UNIT,
    "responsible_unit_code": DossierAttribute.CURRENT_UNIT,
}


def dossier_attributes(source: Any) -> dict[str, str]:
    """The dossier attributes found on an event (or any object with those fields)."""
    return {
        str(attribute): str(value)
        for field, attribute in _FIELDS.items()
        if (value := getattr(source, field, None)) is not None
    }


def annotate_current_span(source: Any) -> None:
    trace.get_current_span().set_attributes(dossier_attributes(source))


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, to link later traces back to it."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def links_to(traceparent: str | None, role: str = "submission") -> list[Link]:
    """A link to the trace a W3C traceparent names (later events link to the submission)."""
    if not traceparent:
        return []
    context = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    span_context = trace.get_current_span(context).get_span_context()
    return [Link(span_context, {"onestop.link": role})] if span_context.is_valid else []


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


@dataclass(frozen=True)
class Telemetry:
    service: str
    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def tracer(self, name: str) -> Tracer:
        return self.tracer_provider.get_tracer(name)

    def meter(self, name: str) -> Meter:
        return self.meter_provider.get_meter(name)

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def configure_telemetry(
    service: str,
    *,
    span_exporters: Iterable[SpanExporter] = (),
    metric_readers: Iterable[MetricReader] | None = None,
) -> Telemetry:
    """Providers for one service. Tests pass in-memory exporters and readers; spans also go
    where the OTEL_* variables say, and metrics to the Prometheus registry."""
    # OTEL_SERVICE_NAME wins over the default name (Resource.create would let ours win).
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service})
    readers = list(metric_readers) if metric_readers is not None else [PrometheusMetricReader()]
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    tracer_provider = TracerProvider(resource=resource)  # sampler from OTEL_TRACES_SAMPLER
    for in_memory in span_exporters:
        tracer_provider.add_span_processor(SimpleSpanProcessor(in_memory))
    if (exporter := _exporter_from_environment()) is not None:
        # Batch size, delay and queue from OTEL_BSP_*. The SDK counts the spans it exports
        # and those it drops when the queue is full (at /metrics:
        # otel_sdk_processor_span_processed_total{error_type="queue_full"}) when its own
        # metrics are on: on by default here (about 2 µs a span), off with the variable false.
        os.environ.setdefault(OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED, "true")
        tracer_provider.add_span_processor(
            BatchSpanProcessor(exporter, meter_provider=meter_provider)
        )
    return Telemetry(service, tracer_provider, meter_provider)


def _exporter_from_environment() -> SpanExporter | None:
    kind = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if kind == "zipkin":
        return ZipkinExporter()  # OTEL_EXPORTER_ZIPKIN_ENDPOINT
    if kind == "otlp" and (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    ):
        return OTLPSpanExporter()
    if kind not in ("otlp", "none"):
        raise ValueError(f"OTEL_TRACES_EXPORTER={kind!r}: expected otlp, zipkin or none")
    return None
