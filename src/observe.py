"""Every HTTP request observed on its way through: its id (/v1), count, latency, stream timings."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src import metrics, request_id

METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"))
UNMATCHED = "unmatched"  # the route label of a path no route serves (never the path itself)
_ERROR_EVENT = b'data: {"error"'


class _Answer:
    """What one request's answer was: status, event stream or not, first and last chunk, end."""

    __slots__ = ("complete", "first_at", "last", "request_id", "send_to_client", "status",
                 "stream")

    def __init__(self, send: Send, rid: str | None) -> None:
        """Watch the answer sent through send; rid: the id to return in X-Request-Id."""
        self.send_to_client, self.request_id = send, rid
        self.status = 0
        self.stream = self.complete = False
        self.first_at: float | None = None
        self.last = b""

    async def send(self, message: Message) -> None:
        """Note what the message says of the answer, add the request id header, pass it on."""
        if message["type"] == "http.response.body":
            if self.stream:
                body = message.get("body", b"")
                if body:
                    if self.first_at is None:
                        self.first_at = time.perf_counter()
                    self.last = body
            if not message.get("more_body", False):
                self.complete = True
        elif message["type"] == "http.response.start":
            self.status = message["status"]
            headers = message.get("headers", ())
            self.stream = any(name == b"content-type" and value.startswith(b"text/event-stream")
                              for name, value in headers)
            if self.request_id is not None:
                message = {**message, "headers": [*headers, (request_id.HEADER,
                                                             self.request_id.encode("ascii"))]}
        await self.send_to_client(message)

    def outcome(self) -> str:
        """How an event stream ended: completed, error_event or cut."""
        if not self.complete:
            return "cut"
        return "error_event" if _ERROR_EVENT in self.last else "completed"


class ObserveMiddleware:
    """The outermost layer: gives a /v1 request its id (X-Request-Id in and out, and in every
    log line about it), and counts every request in the metrics of src/metrics.py."""

    def __init__(self, app: ASGIApp, routes: frozenset[str]) -> None:
        """Wrap the app; routes: the paths the app serves (other paths count as unmatched)."""
        self.app, self.routes = app, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request, then record its count, duration and stream timings."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        rid = None
        if path.startswith("/v1/"):
            rid = request_id.from_headers(scope["headers"])
            request_id.current.set(rid)
        answer = _Answer(send, rid)
        started = time.perf_counter()
        failed = False
        try:
            await self.app(scope, receive, answer.send)
        except Exception:
            failed = True  # Starlette's outer layer answers 500 and logs the traceback
            raise
        finally:
            route = path if path in self.routes else UNMATCHED
            _record(route, method if method in METHODS else "other", answer, started, failed)


def _record(route: str, method: str, answer: _Answer, started: float, failed: bool) -> None:
    """Count one request and observe its duration (and, for a stream, its timings)."""
    ended = time.perf_counter()
    status = answer.status or (500 if failed else 499)
    metrics.REQUESTS.labels(route, method, str(status)).inc()
    metrics.REQUEST_SECONDS.labels(route, method).observe(ended - started)
    if answer.stream:
        if answer.first_at is not None:
            metrics.STREAM_FIRST_BYTE.labels(route).observe(answer.first_at - started)
        metrics.STREAM_SECONDS.labels(route).observe(ended - started)
        metrics.STREAMS.labels(route, answer.outcome()).inc()
