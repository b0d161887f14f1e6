"""The span pipeline's own health: spans the batch processor drops are counted in a metric."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import shared.telemetry
from shared.telemetry import configure_telemetry

DROPPED_SPANS = "otel.sdk.processor.span.processed"


class StuckExporter(SpanExporter):
    """An exporter (a trace backend) that does not answer until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(timeout=30)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


def dropped(reader: InMemoryMetricReader) -> int:
    data = reader.get_metrics_data()
    total = 0
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != DROPPED_SPANS:
                    continue
                for point in metric.data.data_points:
                    if (point.attributes or {}).get("error.type") == "queue_full":
                        assert isinstance(point, NumberDataPoint)
                        total += int(point.value)
    return total


def test_spans_dropped_when_the_export_queue_is_full_are_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "2")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1")
    backend = StuckExporter()
    monkeypatch.setattr(shared.telemetry, "_exporter_from_environment", lambda: backend)
    reader = InMemoryMetricReader()
    telemetry = configure_telemetry("routing", metric_readers=[reader])
    tracer = telemetry.tracer("test")
    try:
        with tracer.start_as_current_span("before the backend got stuck"):
            pass
        assert dropped(reader) == 0

        for n in range(10):
            with tracer.start_as_current_span(f"span {n}"):
                pass
        # One span is being exported and two wait in the queue; at most three get through.
        assert dropped(reader) >= 8
    finally:
        backend.release.set()
        telemetry.shutdown()
    assert backend.exported <= 3
