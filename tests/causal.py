"""Rebuilding one dossier's history from the topics, as a downstream system would: each event
comes after the event that caused it (ce_causationid) and after its source's events with lower
numbers (ce_sequence). ce_time is when a fact happened at its source, not an order."""

from __future__ import annotations

import itertools
from collections import defaultdict
from graphlib import TopologicalSorter

from tests.kafka_reader import Seen


def causal_history(records: list[Seen]) -> list[Seen]:
    """The events in an order that respects every cause and every source's sequence; fails
    on a cause that is not among them, on a gap or repeat in a sequence, or on a cycle."""
    by_id = {r.headers["ce_id"]: r for r in records}
    graph: dict[str, set[str]] = {event_id: set() for event_id in by_id}
    by_source: dict[str, list[Seen]] = defaultdict(list)
    for record in records:
        by_source[record.headers["ce_source"]].append(record)
        cause = record.headers.get("ce_causationid")
        if cause is not None:
            assert cause in by_id, f"{_name(record)}: its cause {cause} is not on any topic"
            graph[record.headers["ce_id"]].add(cause)
    for source, events in by_source.items():
        events.sort(key=lambda r: int(r.headers["ce_sequence"]))
        numbers = [int(r.headers["ce_sequence"]) for r in events]
        assert numbers == list(range(1, len(events) + 1)), f"{source}: sequence {numbers}"
        for earlier, later in itertools.pairwise(events):
            graph[later.headers["ce_id"]].add(earlier.headers["ce_id"])
    return [by_id[event_id] for event_id in TopologicalSorter(graph).static_order()]


def kinds(history: list[Seen]) -> list[str]:
    return [_name(record) for record in history]


def assert_before(history: list[Seen], first: str, then: str) -> None:
    """Every event of kind `then` comes after the first event of kind `first`."""
    names = kinds(history)
    assert first in names and then in names, (first, then, names)
    start = names.index(first)
    assert all(i > start for i, name in enumerate(names) if name == then), names


def _name(record: Seen) -> str:
    return record.headers["ce_type"].split(".")[-2]
