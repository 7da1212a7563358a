"""A recording HTTP receiver on loopback for notification tests.

``Receiver`` runs a ``ThreadingHTTPServer`` on 127.0.0.1 (a free port) in a thread and records
every request it answers with 200 (method, path, JSON body). It can answer the first
``fail_first`` requests with ``fail_status`` (500), sleep ``delay`` seconds before answering,
or hold every answer until ``gate`` is set (an Event the test controls; at most WAIT_SECONDS).
Use it as a context manager: on exit the gate is opened, the server shut down and its socket
closed.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from helpers import WAIT_SECONDS, eventually


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    body: Any


class Receiver:
    def __init__(
        self,
        *,
        fail_first: int = 0,
        fail_status: int = 500,
        delay: float = 0.0,
        gate: threading.Event | None = None,
    ) -> None:
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.delay = delay
        self.gate = gate
        self.requests: list[Received] = []  # answered (or being answered) with 200
        self.arrived = 0  # requests whose body was read (answered or not)
        self.answered = 0  # requests answered (any status)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.gate is not None:
            self.gate.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(WAIT_SECONDS)

    def wait_for(self, n: int, timeout: float | None = None) -> list[Received]:
        """The recorded (200) requests once there are ``n``; AssertionError if they never come
        (``eventually``'s bound unless ``timeout`` is given)."""

        def enough() -> list[Received] | None:
            with self._lock:
                return list(self.requests) if len(self.requests) >= n else None

        return eventually(
            enough, timeout=timeout, interval=0.01,
            message=lambda: f"{len(self.requests)} of {n} requests",
        )  # fmt: skip

    def _respond(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        with self._lock:
            self.arrived += 1
            fail = self.arrived <= self.fail_first
        if self.gate is not None:
            self.gate.wait(WAIT_SECONDS)
        if self.delay:
            time.sleep(self.delay)
        status = self.fail_status if fail else 200
        payload = b'{"error": "failing on purpose"}' if fail else b"{}"
        if not fail:  # recorded before answering: the client never sees an unrecorded 200
            with self._lock:
                self.requests.append(Received(handler.command, handler.path, body))
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:
            pass  # the client gave up (timeout) and closed the connection
        with self._lock:
            self.answered += 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server names it so
                receiver._respond(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
