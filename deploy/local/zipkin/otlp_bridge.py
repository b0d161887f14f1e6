"""OTLP/HTTP receiver for the local Zipkin, started by deploy/local/zipkin.sh.

Zipkin's own OTLP module (io.zipkin.contrib.otel:zipkin-module-otel) is not on Maven Central,
so this process takes the OTLP/HTTP protobuf exports the services send (POST /v1/traces),
turns each span into a Zipkin v2 span and posts them to Zipkin's /api/v2/spans.

Mapping (as OpenTelemetry specifies it for Zipkin): resource service.name becomes
localEndpoint.serviceName; span attributes, the other resource attributes, otel.scope.name and
otel.scope.version become tags, kept under their own names (so Zipkin's search
`annotationQuery=onestop.dossier.code=...` finds them); events become annotations; status ERROR
becomes the `error` tag plus otel.status_code; kind INTERNAL has no Zipkin kind; links are dropped.

GET /health answers 200 only while Zipkin's /health does. Needs opentelemetry-proto (in the
project's .venv). Usage: otlp_bridge.py --port 4318 --zipkin http://127.0.0.1:9411
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import logging
import threading
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

log = logging.getLogger("otlp-bridge")

MAX_BODY = 32 * 1024 * 1024
PROTOBUF = "application/x-protobuf"
KINDS = {
    Span.SPAN_KIND_SERVER: "SERVER",
    Span.SPAN_KIND_CLIENT: "CLIENT",
    Span.SPAN_KIND_PRODUCER: "PRODUCER",
    Span.SPAN_KIND_CONSUMER: "CONSUMER",
}
# Where the remote side's name is found, for CLIENT and PRODUCER spans.
REMOTE_NAME_KEYS = ("peer.service", "server.address", "net.peer.name", "network.peer.address")


def plain(value: AnyValue) -> Any:
    """An attribute value as a JSON-ready Python value."""
    which = value.WhichOneof("value")
    if which == "array_value":
        return [plain(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: plain(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, which) if which else None


def text(value: AnyValue) -> str:
    """An attribute value as a Zipkin tag value: strings as they are, the rest as JSON."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which is None:
        return ""
    return json.dumps(plain(value), ensure_ascii=False, separators=(",", ":"))


def attributes(kvs: Iterable[KeyValue]) -> dict[str, str]:
    return {kv.key: text(kv.value) for kv in kvs}


def to_zipkin(
    span: Span, service: str, common_tags: dict[str, str], scope_tags: dict[str, str]
) -> dict[str, Any] | None:
    """One Zipkin v2 span, or None when the ids are not valid (Zipkin would reject it)."""
    if len(span.trace_id) != 16 or not any(span.trace_id):
        return None
    if len(span.span_id) != 8 or not any(span.span_id):
        return None
    tags = {**common_tags, **scope_tags, **attributes(span.attributes)}
    if span.status.code == Status.STATUS_CODE_ERROR:
        tags["otel.status_code"] = "ERROR"
        tags["error"] = span.status.message
    elif span.status.code == Status.STATUS_CODE_OK:
        tags["otel.status_code"] = "OK"
    for key, count in (
        ("otel.dropped_attributes_count", span.dropped_attributes_count),
        ("otel.dropped_events_count", span.dropped_events_count),
        ("otel.dropped_links_count", span.dropped_links_count),
    ):
        if count:
            tags[key] = str(count)
    out: dict[str, Any] = {
        "traceId": span.trace_id.hex(),
        "id": span.span_id.hex(),
        "name": span.name,
        "localEndpoint": {"serviceName": service},
    }
    if any(span.parent_span_id):
        out["parentId"] = span.parent_span_id.hex()
    if span.kind in KINDS:
        out["kind"] = KINDS[span.kind]
    if span.start_time_unix_nano:
        out["timestamp"] = span.start_time_unix_nano // 1000
        if span.end_time_unix_nano >= span.start_time_unix_nano:
            out["duration"] = max(1, (span.end_time_unix_nano - span.start_time_unix_nano) // 1000)
    if out.get("kind") in ("CLIENT", "PRODUCER"):
        remote = next((tags[k] for k in REMOTE_NAME_KEYS if tags.get(k)), None)
        if remote:
            out["remoteEndpoint"] = {"serviceName": remote}
    annotations = []
    for event in span.events:
        event_attributes = {kv.key: plain(kv.value) for kv in event.attributes}
        value = (
            json.dumps({event.name: event_attributes}, ensure_ascii=False, separators=(",", ":"))
            if event_attributes
            else event.name
        )
        annotations.append({"timestamp": event.time_unix_nano // 1000, "value": value})
    if annotations:
        out["annotations"] = annotations
    if tags:
        out["tags"] = tags
    return out


def convert(request: ExportTraceServiceRequest) -> tuple[list[dict[str, Any]], int]:
    """The Zipkin spans of one export, and how many spans were rejected."""
    spans: list[dict[str, Any]] = []
    rejected = 0
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        service = resource.pop("service.name", "") or "unknown_service"
        for scope_spans in resource_spans.scope_spans:
            scope_tags = {}
            if scope_spans.scope.name:
                scope_tags["otel.scope.name"] = scope_spans.scope.name
            if scope_spans.scope.version:
                scope_tags["otel.scope.version"] = scope_spans.scope.version
            for span in scope_spans.spans:
                converted = to_zipkin(span, service, resource, scope_tags)
                if converted is None:
                    rejected += 1
                else:
                    spans.append(converted)
    return spans, rejected


class Bridge(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], zipkin: str) -> None:
        super().__init__(address, Handler)
        self.zipkin = zipkin.rstrip("/")
        self.lock = threading.Lock()
        self.received = 0
        self.forwarded = 0


class Handler(BaseHTTPRequestHandler):
    server: Bridge
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per export would drown the log; failures are logged below

    def reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/health":
            self.reply(HTTPStatus.NOT_FOUND, b"not found\n")
            return
        try:
            with urllib.request.urlopen(f"{self.server.zipkin}/health", timeout=2) as answer:
                zipkin_up = answer.status == 200
        except (OSError, urllib.error.URLError):
            zipkin_up = False
        with self.server.lock:
            body = {
                "status": "UP" if zipkin_up else "DOWN",
                "zipkin": self.server.zipkin,
                "received_spans": self.server.received,
                "forwarded_spans": self.server.forwarded,
            }
        status = HTTPStatus.OK if zipkin_up else HTTPStatus.SERVICE_UNAVAILABLE
        self.reply(status, json.dumps(body).encode() + b"\n", "application/json")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True  # the unread body must not be taken for a request
            self.reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"export too large\n")
            return
        body = self.rfile.read(length)
        if self.path.split("?")[0] != "/v1/traces":
            self.reply(HTTPStatus.NOT_FOUND, b"only /v1/traces is served here\n")
            return
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type != PROTOBUF:
            self.reply(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, b"only OTLP protobuf is accepted\n")
            return
        try:
            encoding = (self.headers.get("Content-Encoding") or "").strip().lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            request = ExportTraceServiceRequest.FromString(body)
        except (OSError, zlib.error, DecodeError) as error:
            log.warning("undecodable export: %s", error)
            self.reply(HTTPStatus.BAD_REQUEST, f"undecodable export: {error}\n".encode())
            return
        spans, rejected = convert(request)
        with self.server.lock:
            self.server.received += len(spans) + rejected
        if spans and not self.forward(spans):
            return
        response = ExportTraceServiceResponse()
        if rejected:
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = "trace_id and span_id must be non-zero"
        self.reply(HTTPStatus.OK, response.SerializeToString(), PROTOBUF)

    def forward(self, spans: list[dict[str, Any]]) -> bool:
        """Post to Zipkin; on failure answer the exporter (503 lets it retry) and return False."""
        request = urllib.request.Request(
            f"{self.server.zipkin}/api/v2/spans",
            data=json.dumps(spans, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10):
                pass
        except urllib.error.HTTPError as error:
            detail = error.read()[:500].decode(errors="replace")
            log.warning("Zipkin refused %d spans: HTTP %s %s", len(spans), error.code, detail)
            status = HTTPStatus.BAD_REQUEST if error.code < 500 else HTTPStatus.SERVICE_UNAVAILABLE
            self.reply(status, f"Zipkin answered {error.code}: {detail}\n".encode())
            return False
        except OSError as error:  # URLError, refused connection, timeout
            log.warning("Zipkin unreachable, %d spans not stored: %s", len(spans), error)
            self.reply(HTTPStatus.SERVICE_UNAVAILABLE, f"Zipkin unreachable: {error}\n".encode())
            return False
        with self.server.lock:
            self.server.forwarded += len(spans)
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description="OTLP/HTTP (protobuf) to Zipkin bridge")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4318)
    parser.add_argument("--zipkin", default="http://127.0.0.1:9411", help="Zipkin base URL")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    server = Bridge((args.host, args.port), args.zipkin)
    log.info(
        "receiving OTLP/HTTP on http://%s:%d/v1/traces, storing in %s",
        args.host,
        args.port,
        args.zipkin,
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
