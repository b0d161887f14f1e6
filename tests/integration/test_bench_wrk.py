"""`make bench`'s closed loops run by wrk with deploy/bench/post.lua, against a small server of
the test's own: every body is posted, the token is sent, the answers are counted by status and
the latency comes back as 1,000 quantiles. (Nothing here is timed.)"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deploy.bench import wrk
from deploy.bench.results import Phase


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: Counter[str] = Counter()
        self.authorizations: set[str | None] = set()
        self.lock = threading.Lock()

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # wrk closes its connections at the end, mid-request: not the test's concern


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        name = json.loads(body)["name"]
        with self.server.lock:
            self.server.bodies[name] += 1
            self.server.authorizations.add(self.headers.get("Authorization"))
        status = 422 if name == "bad" else 201
        answer = b"{}"
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_: object) -> None:  # quiet
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    running = _Server()
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


def test_wrk_posts_every_body_and_counts_the_answers(server: _Server) -> None:
    bodies = [json.dumps({"name": name}).encode() for name in ("a", "b", "c", "bad")]
    phase = Phase("closed by wrk", "closed")
    url = f"http://127.0.0.1:{server.server_address[1]}"

    asyncio.run(wrk.closed_loop(url, bodies, phase, token="t0ken", connections=4, seconds=1))

    assert set(server.bodies) == {"a", "b", "c", "bad"}
    assert server.authorizations == {"Bearer t0ken"}
    answered = phase.completed + phase.failures.get("422", 0)
    # wrk counts the answers it read before its time was up: a request in flight at the end
    # was seen by the server but not answered to wrk.
    assert 0 < answered <= sum(server.bodies.values())
    assert phase.failures.get("422", 0) > 0 and phase.completed > phase.failures["422"]
    assert set(phase.failures) == {"422"}
    assert phase.seconds > 0
    assert len(phase.latency_quantiles_ms) == 1000
    assert phase.latency_quantiles_ms == sorted(phase.latency_quantiles_ms)
    assert phase.latency_quantiles_ms[-1] > 0


def test_a_missing_result_line_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no result line"):
        wrk.fill(Phase("x", "closed"), "Running 1s test @ http://127.0.0.1:1\n")
