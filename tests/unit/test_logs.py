"""The service logs: repeats are rate-limited, libraries' chatter stays out."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.logs import QUIET_LIBRARIES, RepeatFilter, TopicsEnsuredFilter, configure_logging


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(
    message: str = "Unable connect to node with id %s: %s",
    *args: object,
    logger: str = "aiokafka",
    level: int = logging.ERROR,
    **extra: object,
) -> logging.LogRecord:
    made = logging.LogRecord(logger, level, __file__, 1, message, args or (1, "refused"), None)
    made.__dict__.update(extra)
    return made


class Written(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Scheduled(list[tuple[float, Callable[[], None]]]):
    def __call__(self, delay: float, action: Callable[[], None]) -> None:
        self.append((delay, action))


def test_repeats_within_the_interval_become_one_line_with_their_count() -> None:
    clock, scheduled, written = FakeClock(), Scheduled(), Written()
    repeats = RepeatFilter(interval=10.0, clock=clock, schedule=scheduled, handler=written)
    written.addFilter(repeats)

    for _ in range(1000):  # 100 a second for 10 s, as aiokafka does while the broker is down
        written.handle(record())
        clock.now += 0.01
    assert len(written.records) == 1
    assert not hasattr(written.records[0], "repeats_suppressed")
    assert [delay for delay, _ in scheduled] == [pytest.approx(9.99)]  # one, at the end

    clock.now += 0.01
    scheduled.pop()[1]()  # the interval is over: the last repeat, counting the others
    assert len(written.records) == 2
    assert getattr(written.records[1], "repeats_suppressed", 0) == 998  # 1 + 998 + this one = 1000

    for _ in range(5):  # the next interval starts with that line
        written.handle(record())
    clock.now += 10
    scheduled.pop()[1]()
    assert [getattr(r, "repeats_suppressed", 0) for r in written.records] == [0, 998, 4]
    assert scheduled == []


def test_pending_repeats_are_written_at_exit() -> None:
    written = Written()
    repeats = RepeatFilter(interval=10.0, clock=FakeClock(), schedule=Scheduled(), handler=written)
    written.addFilter(repeats)
    for _ in range(53):  # 503s while PostgreSQL restarts, then the service stops
        written.handle(record("storage unavailable", level=logging.WARNING, logger="intake"))
    repeats.flush()
    assert [getattr(r, "repeats_suppressed", 0) for r in written.records] == [0, 51]


def test_without_a_handler_the_next_record_of_the_kind_carries_the_count() -> None:
    clock = FakeClock()
    repeats = RepeatFilter(interval=10.0, clock=clock)
    assert repeats.filter(record())
    assert not any(repeats.filter(record()) for _ in range(41))
    clock.now += 10
    later = record()
    assert repeats.filter(later)
    assert getattr(later, "repeats_suppressed", 0) == 41


def test_the_first_record_carries_no_count_and_quiet_periods_reset_it() -> None:
    clock = FakeClock()
    repeats = RepeatFilter(interval=10.0, clock=clock)
    first = record()
    assert repeats.filter(first)
    assert not hasattr(first, "repeats_suppressed")
    clock.now += 60
    again = record()
    assert repeats.filter(again)
    assert not hasattr(again, "repeats_suppressed")


def test_kinds_are_counted_apart() -> None:
    clock = FakeClock()
    repeats = RepeatFilter(interval=10.0, clock=clock)
    assert repeats.filter(record())
    assert repeats.filter(record("Unable to update metadata from %s", [1]))
    assert repeats.filter(record(logger="aiokafka.consumer.fetcher"))
    assert repeats.filter(record(level=logging.WARNING))
    # The project's retry loop: the same template for different operations.
    retry = "%s failed, retrying"
    assert repeats.filter(record(retry, "outbox relay", logger="r", operation="outbox relay"))
    assert repeats.filter(record(retry, "kafka", logger="r", operation="connecting to Kafka"))
    assert not repeats.filter(record(retry, "kafka", logger="r", operation="connecting to Kafka"))
    # Arguments do not make a new kind: the template does.
    assert not repeats.filter(record("Unable connect to node with id %s: %s", 2, "reset"))


def test_records_below_the_level_are_never_dropped() -> None:
    repeats = RepeatFilter(interval=10.0, clock=FakeClock())
    assert all(repeats.filter(record("dossier routed", level=logging.INFO)) for _ in range(50))


def test_it_remembers_a_bounded_number_of_kinds() -> None:
    clock = FakeClock()
    repeats = RepeatFilter(interval=10.0, clock=clock)
    for n in range(5000):
        repeats.filter(record(f"built with an f-string {n}"))
        clock.now += 0.001
    assert len(repeats._kinds) <= RepeatFilter.MAX_KINDS


@pytest.fixture
def service_log(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[Any]]]:
    """The JSON lines configure_logging writes to stdout; the logging setup is restored."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in QUIET_LIBRARIES}
    yield lambda: [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


def test_a_service_log_keeps_library_info_out_and_limits_repeats(
    service_log: Callable[[], list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    scheduled = Scheduled()
    monkeypatch.setattr("shared.logs._in_a_thread", scheduled)  # no timer outliving the test
    configure_logging("notifier")
    logging.getLogger("fontTools.subset").info("glyf pruned")
    logging.getLogger("faststream.notifier").info("Consumer assigned to partitions")
    logging.getLogger("services.notifier").info("apology issued")
    for _ in range(100):
        logging.getLogger("aiokafka").error("Unable connect to node with id %s: %s", 1, "refused")
    assert len(scheduled) == 1
    scheduled.pop()[1]()  # ten seconds later
    written = service_log()
    assert [line["logger"] for line in written] == ["services.notifier", "aiokafka", "aiokafka"]
    assert written[1]["message"] == "Unable connect to node with id 1: refused"
    assert written[2]["repeats_suppressed"] == 98


def test_at_debug_the_libraries_speak(
    service_log: Callable[[], list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "debug")
    configure_logging("notifier")
    logging.getLogger("fontTools.subset").info("glyf pruned")
    assert [line["logger"] for line in service_log()] == ["fontTools.subset"]


def test_faststreams_warning_about_topics_it_will_not_create_is_dropped() -> None:
    """The services create and wait for their topics themselves; other warnings stay."""

    def record(name: str, message: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.WARNING, __file__, 1, message, None, None)

    drop = TopicsEnsuredFilter()
    assert not drop.filter(record("faststream.intake", TopicsEnsuredFilter.MESSAGE))
    assert drop.filter(record("faststream.intake", "Topic creation is skipped"))
    assert drop.filter(record("services.intake", TopicsEnsuredFilter.MESSAGE))
