"""One logging setup for every service: JSON lines on stdout carrying the service name and the
current trace_id and span_id, so that a log line leads to its trace.

Log records carry codes and counts, never personal data: callers pass dossier codes, unit
codes and error types in `extra`, not applicants' details."""

from __future__ import annotations

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


class RepeatFilter(logging.Filter):
    """Lets one record of a kind (logger, level, message template, `operation`) through per
    interval and drops its repeats, counting them in `repeats_suppressed` of the next one that
    passes: while Kafka restarts, aiokafka's reconnect loops write hundreds of lines a second.

    Records below `min_level` always pass."""

    MAX_KINDS = 1024  # templates built with f-strings would otherwise grow it forever

    def __init__(
        self,
        interval: float = 10.0,
        *,
        min_level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.interval = interval
        self.min_level = min_level
        self._clock = clock
        self._kinds: dict[tuple[str, int, str, str], list[float]] = {}  # [last passed, dropped]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level:
            return True
        kind = (record.name, record.levelno, str(record.msg), str(getattr(record, "operation", "")))
        now = self._clock()
        with self._lock:
            seen = self._kinds.get(kind)
            if seen is not None and now - seen[0] < self.interval:
                seen[1] += 1
                return False
            if seen is None and len(self._kinds) >= self.MAX_KINDS:
                self._forget_before(now - self.interval)
            self._kinds[kind] = [now, 0]
        if seen is not None and seen[1]:
            record.repeats_suppressed = int(seen[1])
        return True

    def _forget_before(self, moment: float) -> None:
        for kind in [k for k, (last, dropped) in self._kinds.items() if last < moment]:
            del self._kinds[kind]
        if len(self._kinds) >= self.MAX_KINDS:
            self._kinds.clear()


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
    handler.addFilter(RepeatFilter())
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
