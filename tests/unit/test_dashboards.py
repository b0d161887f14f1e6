"""The dashboards and alert rules are well-formed: JSON and YAML parse, each PromQL
expression parses (promql-parser, the Rust port of Prometheus' parser), panels read the
provisioned data source, and every alert says what to do. That the metrics they name exist
is proven against the running services: tests/integration/test_dashboards.py."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.dashboards import (
    ALERTS,
    DASHBOARDS,
    ROOT,
    dashboard,
    expressions,
    metric_names,
    panels,
    rules,
)


def test_there_is_a_dashboard_and_alert_rules() -> None:
    assert DASHBOARDS, "no dashboard in deploy/grafana/dashboards"
    assert rules()


@pytest.mark.parametrize(("where", "expression"), list(expressions()))
def test_every_expression_parses_and_reads_a_metric(where: str, expression: str) -> None:
    try:
        names = metric_names(expression)
    except ValueError as error:
        pytest.fail(f"{where}: {error}: {expression}")
    assert names, f"{where} reads no metric"


def test_panels_read_the_provisioned_prometheus() -> None:
    [source] = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text("utf-8")
    )["datasources"]
    for path in DASHBOARDS:
        board = dashboard(path)
        assert board["uid"] and board["title"]
        ids = [panel["id"] for panel in panels(board)]
        assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"
        for panel in panels(board):
            if panel["type"] == "row":
                continue
            assert panel["targets"], f"{path.name}: {panel['title']} shows nothing"
            sources: list[dict[str, Any]] = [panel["datasource"]]
            sources += [target["datasource"] for target in panel["targets"]]
            assert all(s == {"type": "prometheus", "uid": source["uid"]} for s in sources)


def test_the_operators_see_what_the_issue_asks_for() -> None:
    """Throughput, lag, backlog, overdue and due-soon per unit, apologies (on time and late),
    dead letters."""
    used = {name for _, expression in expressions() for name in metric_names(expression)}
    assert {
        "onestop_messages_handled_total",
        "http_server_duration_milliseconds_count",
        "onestop_consumer_lag",
        "onestop_outbox_backlog",
        "onestop_dossiers_overdue",
        "onestop_lateness_detected_total",
        "onestop_apologies_issued_total",
        "onestop_letters_dead_lettered_total",
        "onestop_background_loop_running",
    } <= used


def test_every_alert_is_named_rated_and_explained() -> None:
    alerts = [rule["alert"] for rule in rules()]
    assert len(alerts) == len(set(alerts))
    assert {
        "ConsumerLagGrowing",
        "OutboxBacklog",
        "MessagesDeadLettered",
        "OverdueGrowing",
        "BackgroundLoopStopped",
    } <= set(alerts)
    for rule in rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_the_rules_file_is_the_one_prometheus_loads() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text("utf-8"))
    assert [path.rsplit("/", 1)[1] for path in config["rule_files"]] == [ALERTS.name]
