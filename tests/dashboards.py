"""The operators' Grafana dashboards and Prometheus alert rules, as files, and the metric
names their PromQL expressions read (parsed with promql-parser, not pattern-matched)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import yaml

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))
ALERTS = ROOT / "deploy/prometheus/alerts.yml"
# Series Prometheus makes itself, not read from a service's /metrics.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def dashboard(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", ())  # a collapsed row holds its panels


def expressions() -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every dashboard target and alert rule."""
    for path in DASHBOARDS:
        for panel in panels(dashboard(path)):
            for target in panel.get("targets", ()):
                yield f"{path.name}: {panel['title']}", target["expr"]
    for rule in rules():
        yield f"{ALERTS.name}: {rule['alert']}", rule["expr"]


def metric_names(expression: str) -> set[str]:
    """The metrics an expression selects (ValueError if it does not parse)."""
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expression), pre_visit=visit)
    return names


def used_metrics() -> dict[str, set[str]]:
    """Metric name → where it is used, Prometheus' own series left out."""
    used: dict[str, set[str]] = {}
    for where, expression in expressions():
        for name in metric_names(expression) - PROMETHEUS_OWN:
            used.setdefault(name, set()).add(where)
    return used
