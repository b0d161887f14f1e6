"""One logging setup for every service: JSON lines on stdout carrying the service name and the
current trace_id and span_id, so that a log line leads to its trace.

Log records carry codes and counts, never personal data: callers pass dossier codes, unit
codes and error types in `extra`, not applicants' details."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

# Libraries whose INFO is chatter in a service log (a PDF's font subsetting, each consumer
# assignment, each HTTP request): WARNING unless the service runs at DEBUG.
QUIET_LIBRARIES = (
    "aiokafka",
    "faststream",
    "fontTools",
    "weasyprint",
    "httpx",
    "httpcore",
    "uvicorn.access",
    "asyncio",
)


class TraceContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


class _Kind:
    __slots__ = ("dropped", "last", "since")

    def __init__(self, since: float) -> None:
        self.since = since  # when the last line of this kind was written
        self.dropped = 0
        self.last: logging.LogRecord | None = None


class TopicsEnsuredFilter(logging.Filter):
    """FastStream warns at every subscriber's start that it will not create topics. Here that
    is by design: each service creates the topics it writes and waits for those it reads
    before it subscribes (shared/runtime.py), so the warning only hides real ones."""

    MESSAGE = "Auto create topics is disabled. Make sure the topics exist."

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("faststream") and record.getMessage() == self.MESSAGE)


class RepeatFilter(logging.Filter):
    """Writes one record of a kind (logger, level, message template, `operation`) per interval:
    while Kafka restarts, aiokafka's reconnect loops log hundreds of lines a second.

    The repeats within the interval are dropped; at its end the last of them is written with
    `repeats_suppressed`, the number of others not written (through `handler`, if given;
    otherwise the next record of the kind carries the count). Records below `min_level`
    always pass."""

    MAX_KINDS = 1024  # templates built with f-strings would otherwise grow it forever

    def __init__(
        self,
        interval: float = 10.0,
        *,
        min_level: int = logging.WARNING,
        handler: logging.Handler | None = None,
        clock: Callable[[], float] = time.monotonic,
        schedule: Callable[[float, Callable[[], None]], None] | None = None,
    ) -> None:
        super().__init__()
        self.interval = interval
        self.min_level = min_level
        self._handler = handler
        self._clock = clock
        self._schedule = schedule if schedule is not None else _in_a_thread
        self._kinds: dict[tuple[str, int, str, str], _Kind] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level:
            return True
        key = (record.name, record.levelno, str(record.msg), str(getattr(record, "operation", "")))
        now = self._clock()
        with self._lock:
            kind = self._kinds.get(key)
            if kind is not None and now - kind.since < self.interval:
                kind.dropped += 1
                if kind.last is None and self._handler is not None:
                    self._schedule(kind.since + self.interval - now, lambda: self._flush(key))
                kind.last = record
                return False
            if kind is None and len(self._kinds) >= self.MAX_KINDS:
                self._forget_before(now - self.interval)
            self._kinds[key] = _Kind(since=now)
        if kind is not None and kind.dropped:
            record.repeats_suppressed = kind.dropped
        return True

    def _flush(self, key: tuple[str, int, str, str]) -> None:
        """The interval is over: write the last repeat, counting the others."""
        with self._lock:
            kind = self._kinds.get(key)
            if kind is None or kind.last is None:
                return
            record, others = kind.last, kind.dropped - 1
            self._kinds[key] = _Kind(since=self._clock())
        if others:
            record.repeats_suppressed = others
        assert self._handler is not None
        if getattr(getattr(self._handler, "stream", None), "closed", False):
            return  # at exit, after whoever owned the stream (a test runner) closed it
        with self._handler.lock or contextlib.nullcontext():
            self._handler.emit(record)  # the other filters have seen it already

    def flush(self) -> None:
        """Write the repeats still pending (at exit)."""
        with self._lock:
            pending = [key for key, kind in self._kinds.items() if kind.last is not None]
        for key in pending:
            self._flush(key)

    def _forget_before(self, moment: float) -> None:
        for key in [k for k, kind in self._kinds.items() if kind.since < moment]:
            del self._kinds[key]
        if len(self._kinds) >= self.MAX_KINDS:
            self._kinds.clear()


def _in_a_thread(delay: float, action: Callable[[], None]) -> None:
    timer = threading.Timer(delay, action)
    timer.daemon = True
    timer.start()


_repeats: RepeatFilter | None = None


def flush_repeats() -> None:
    """Write the counts of repeats still pending: uvicorn ends by re-raising SIGTERM, so a
    service calls this as it stops (atexit would not run)."""
    if _repeats is not None:
        _repeats.flush()


def json_formatter(service: str) -> logging.Formatter:
    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        timestamp="time",
        rename_fields={"levelname": "level", "name": "logger"},
        static_fields={"service": service},
        reserved_attrs=[*JsonFormatter().reserved_attrs, "color_message"],
        json_ensure_ascii=False,
    )


def configure_logging(service: str, level: int | str | None = None) -> None:
    """`level` defaults to LOG_LEVEL (INFO); at DEBUG the libraries speak freely too."""
    if not isinstance(level, int):
        named = logging.getLevelName((level or os.environ.get("LOG_LEVEL") or "INFO").upper())
        level = named if isinstance(named, int) else logging.INFO
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(json_formatter(service))
    handler.addFilter(TraceContextFilter())
    handler.addFilter(TopicsEnsuredFilter())
    global _repeats
    _repeats = RepeatFilter(handler=handler)
    handler.addFilter(_repeats)
    atexit.register(_repeats.flush)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    library_level = logging.NOTSET if level <= logging.DEBUG else logging.WARNING
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(library_level)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("faststream", "uvicorn", "aiokafka", "fontTools")):
            library_logger = logging.getLogger(name)
            library_logger.handlers.clear()  # their own formats would break the JSON lines
            library_logger.propagate = True
