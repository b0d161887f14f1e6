"""Reading what an in-memory metric reader collected, as a test asserts on it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader


def samples(
    readers: Iterable[InMemoryMetricReader], name: str
) -> Iterator[tuple[dict[str, Any], float]]:
    """(attributes, value) of each data point of the metric `name` (sums and gauges)."""
    for reader in readers:
        data = reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in getattr(metric.data, "data_points", ()):
                            yield dict(point.attributes or {}), float(point.value)
