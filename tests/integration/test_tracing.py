"""One submission, one trace across the four services; and no personal data in telemetry.

The four services run in this process on the real Kafka broker and PostgreSQL server, each
with its own tracer provider exporting to one in-memory exporter (tests/system.py)."""

from __future__ import annotations

import io
import itertools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from shared.clock import system_clock
from shared.events import Topic
from shared.logs import TraceContextFilter, json_formatter
from shared.telemetry import ATTRIBUTE_PREFIX
from tests.conftest import in_test_namespace
from tests.factories import APPLICANT, submission
from tests.system import System, eventually, running_system
from tests.users import counter_of


@dataclass
class Traced:
    system: System
    log: io.StringIO


@pytest.fixture(scope="module")
async def traced(infrastructure: dict[str, str]) -> AsyncIterator[Traced]:
    async with running_system(infrastructure, system_clock) as system:
        # After the lifespans configured logging: every log line of the four, as JSON.
        log = io.StringIO()
        capture = logging.StreamHandler(log)
        capture.setFormatter(json_formatter("all"))
        capture.addFilter(TraceContextFilter())
        logging.getLogger().addHandler(capture)
        try:
            yield Traced(system, log)
        finally:
            logging.getLogger().removeHandler(capture)


async def submit_and_follow(system: System, body: dict[str, Any]) -> dict[str, Any]:
    """Post a dossier and wait until every service has done its part for it."""
    async with system.client("intake", counter_of("000.00.00.H29")) as client:
        response = await client.post("/v1/dossiers", json=body)
        assert response.status_code == 201, response.text
        code = response.json()["dossier_code"]

        async def complete() -> dict[str, Any] | None:
            view: dict[str, Any] = (await client.get(f"/v1/dossiers/{code}")).json()
            routed = view["routing"] and all(s["due_at"] for s in view["routing"]["steps"])
            return view if routed and view["deadline"] and view["notifier"] else None

        view: dict[str, Any] = await eventually(complete, what=f"{code} through every service")
        return view


def service_of(span: ReadableSpan) -> str:
    return str(span.resource.attributes["service.name"])


def ancestry(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    chain = [span]
    while chain[-1].parent is not None and chain[-1].parent.span_id in by_id:
        chain.append(by_id[chain[-1].parent.span_id])
    return chain


async def test_one_submission_is_one_trace_across_the_four_services(traced: Traced) -> None:
    system = traced.system
    view = await submit_and_follow(system, submission(procedure_code="2.000488"))
    trace_id = int(view["receipt"]["trace_id"], 16)

    def through_routing(span: ReadableSpan) -> bool:
        return service_of(span) == "routing" and span.kind is SpanKind.CONSUMER

    def consuming(span: ReadableSpan, service: str) -> bool:
        return service_of(span) == service and span.kind is SpanKind.CONSUMER

    async def finished() -> list[ReadableSpan] | None:
        """The trace's spans, once the notifier has read the clock and the deadline service
        has read routing's plan (the view shows the plan before those spans end). Each
        service traces only the events it handles, so the plan's path ends at the deadline
        service: the notifier has nothing to do with step clocks until one is late."""
        spans = [s for s in system.spans.get_finished_spans() if s.context.trace_id == trace_id]
        by_id = {s.context.span_id: s for s in spans}
        notified = any(consuming(s, "notifier") for s in spans)
        planned = any(
            consuming(s, "deadline") and any(map(through_routing, ancestry(s, by_id)))
            for s in spans
        )
        return spans if notified and planned else None

    spans: list[ReadableSpan] = await eventually(finished, what="the trace through routing")
    by_id = {s.context.span_id: s for s in spans}

    def through_routing_in(span: ReadableSpan) -> bool:
        return any(map(through_routing, ancestry(span, by_id)))

    assert {service_of(s) for s in spans} >= {"intake", "routing", "deadline", "notifier"}
    [root] = [s for s in spans if s.parent is None]
    assert (service_of(root), root.kind, root.name) == (
        "intake",
        SpanKind.SERVER,
        "POST /v1/dossiers",
    )
    assert (root.attributes or {}).get(f"{ATTRIBUTE_PREFIX}.code") == view["dossier_code"]

    # The notifier's processing descends, hop by hop, from the counter's request through the
    # clock (intake -> deadline -> notifier); the deadline service's step clocks descend
    # from routing's plan (intake -> routing -> deadline).
    notifier_processes = [
        s
        for s in spans
        if consuming(s, "notifier") and s.name == f"{in_test_namespace(Topic.DEADLINE)} process"
    ]
    planned = [s for s in spans if consuming(s, "deadline") and through_routing_in(s)]
    assert notifier_processes and planned

    def services_along(chain: list[ReadableSpan]) -> list[str]:
        return list(dict.fromkeys(service_of(s) for s in reversed(chain)))

    chains = [ancestry(process, by_id) for process in [*notifier_processes, *planned]]
    assert all(chain[-1] is root for chain in chains)
    for process in notifier_processes:
        assert services_along(ancestry(process, by_id)) == ["intake", "deadline", "notifier"]
    for process in planned:
        assert services_along(ancestry(process, by_id)) == ["intake", "routing", "deadline"]
    hops_of = [[(service_of(s), s.kind) for s in reversed(chain)] for chain in chains]
    for hops in hops_of:
        for previous, current in itertools.pairwise(hops):
            if previous[0] != current[0]:  # crossing Kafka: a producer parents a consumer
                assert (previous[1], current[1]) == (SpanKind.PRODUCER, SpanKind.CONSUMER), hops
    for chain in chains:
        for span in chain:
            if span.kind is SpanKind.CONSUMER:
                assert (span.attributes or {}).get(f"{ATTRIBUTE_PREFIX}.code") == view[
                    "dossier_code"
                ]

    # Database work: one span per transaction, in the trace; no bare BEGIN/COMMIT spans.
    transactions = {service_of(s) for s in spans if s.name.endswith(" transaction")}
    assert transactions >= {"intake", "routing", "deadline", "notifier"}
    assert not [s for s in spans if s.name.upper() in ("BEGIN", "COMMIT", "ROLLBACK")]


async def test_no_personal_data_in_spans_metrics_or_logs(traced: Traced) -> None:
    system = traced.system
    await submit_and_follow(system, submission())
    await submit_and_follow(system, submission(procedure_code="1.004227"))  # a second route

    secrets = [value for value in APPLICANT.values() if value]
    exported = "\n".join(
        repr(
            (
                span.name,
                dict(span.attributes or {}),
                [(e.name, dict(e.attributes or {})) for e in span.events],
                [dict(link.attributes or {}) for link in span.links],
                dict(span.resource.attributes),
            )
        )
        for span in system.spans.get_finished_spans()
    )
    metrics = "\n".join(
        data.to_json() for reader in system.readers if (data := reader.get_metrics_data())
    )
    logs = traced.log.getvalue()
    assert system.spans.get_finished_spans() and logs and metrics  # something to scan
    for secret in secrets:
        assert secret not in exported, f"personal data in spans: {secret[:3]}…"
        assert secret not in metrics, f"personal data in metrics: {secret[:3]}…"
        assert secret not in logs, f"personal data in logs: {secret[:3]}…"
