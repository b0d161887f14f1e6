"""One logging setup for every service: JSON lines on stdout carrying the service name and the
current trace_id and span_id, so that a log line leads to its trace.

Log records carry codes and counts, never personal data: callers pass dossier codes, unit
codes and error types in `extra`, not applicants' details."""

from __future__ import annotations

import logging
import sys

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter


class TraceContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


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


def configure_logging(service: str, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(json_formatter(service))
    handler.addFilter(TraceContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("faststream", "uvicorn")):
            library_logger = logging.getLogger(name)
            library_logger.handlers.clear()  # their own formats would break the JSON lines
            library_logger.propagate = True
