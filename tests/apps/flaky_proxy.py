"""An HTTP proxy that misbehaves on purpose in front of a real server (the Olah Hub mirror).

    proxy = FlakyProxy("http://127.0.0.1:8123").start()   # listens on 127.0.0.1, proxy.url
    proxy.add(Fault("/api/models/", status=503, times=2))  # the next two matching requests: 503
    ...
    proxy.stop()

A request is forwarded to the upstream server (GET and HEAD), unless a queued fault matches it
(its path contains the fault's `path`, and its method is the fault's, when one is given); each
fault applies to the next `times` matching requests, then is spent:
  status=503 (or 429 …)   answer that status with a short body instead of forwarding
  cut_after=N             forward, announce the whole body, send N bytes, close the connection
  corrupt=True            forward the body with its first byte changed (same size)
The proxy serves byte ranges itself ("Range: bytes=N-" → 206 and the rest of the body), as the
Hub's CDN does and Olah does not, so a client can resume a cut download. Every request is
recorded in `requests` as (method, path, range header or None, status sent, body bytes sent).
"""

from __future__ import annotations

import http.client
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
UPSTREAM_TIMEOUT_S = 30


@dataclass
class Fault:
    """One way to misbehave, for the next `times` requests whose path contains `path`."""

    path: str
    status: int = 0
    cut_after: int = -1
    corrupt: bool = False
    times: int = 1
    method: str = ""


@dataclass(frozen=True)
class Request:
    """What the proxy saw and did for one request."""

    method: str
    path: str
    range: str | None
    status: int
    sent: int


class FlakyProxy:
    """The proxy server: start(), add(fault), requests, stop()."""

    def __init__(self, upstream: str) -> None:
        """Describe a proxy in front of `upstream` (an http://host:port URL)."""
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname or "", parts.port or 80
        self.upstream = upstream.rstrip("/")
        self.requests: list[Request] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    def add(self, fault: Fault) -> None:
        """Queue a fault; faults are tried in the order they were added."""
        with self._lock:
            self._faults.append(fault)

    def take_fault(self, method: str, path: str) -> Fault | None:
        """Return (and spend one use of) the first fault matching the request, if any."""
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.path in path and fault.method in ("", method):
                    fault.times -= 1
                    return fault
        return None

    def record(self, request: Request) -> None:
        """Add a request to the log."""
        with self._lock:
            self.requests.append(request)

    def start(self) -> FlakyProxy:
        """Listen on a free port of 127.0.0.1 and serve in a background thread."""
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _Handler(BaseHTTPRequestHandler):
    """Forward one request, or misbehave as the first matching fault says."""

    owner: FlakyProxy

    def do_GET(self) -> None:
        """Forward a GET."""
        self._handle()

    def do_HEAD(self) -> None:
        """Forward a HEAD."""
        self._handle()

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: the test reads `requests` instead."""

    def _handle(self) -> None:
        """Answer from a fault or from upstream, then record what was sent."""
        ask_range = self.headers.get("Range")
        fault = self.owner.take_fault(self.command, self.path)
        if fault is not None and fault.status:
            body = f"fault: {fault.status}\n".encode()
            self._send(fault.status, [("Content-Type", "text/plain")], body, ask_range)
            return
        status, headers, body = self._forward()
        if body and fault is not None and fault.corrupt:
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        start = _range_start(ask_range) if status == 200 else None
        if start is not None and start < len(body):
            headers.append(("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}"))
            status, body = 206, body[start:]
        cut = fault.cut_after if fault is not None and fault.cut_after >= 0 else None
        self._send(status, headers, body, ask_range, cut)

    def _forward(self) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the request upstream (without its Range) and return status, headers, body."""
        conn = http.client.HTTPConnection(self.owner.upstream_host, self.owner.upstream_port,
                                          timeout=UPSTREAM_TIMEOUT_S)
        try:
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in _HOP_HEADERS and k.lower() != "range"}
            conn.request(self.command, self.path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            kept = [(k, v.replace(self.owner.upstream, self.owner.url))
                    for k, v in response.getheaders() if k.lower() not in _HOP_HEADERS]
            if self.command == "HEAD" and response.getheader("Content-Length"):
                kept.append(("Content-Length", response.getheader("Content-Length", "")))
            return response.status, kept, body
        finally:
            conn.close()

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes,
              ask_range: str | None, cut: int | None = None) -> None:
        """Write the answer; with `cut`, only that many body bytes before closing."""
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        sent = 0
        if self.command != "HEAD":
            sent = len(body) if cut is None else min(cut, len(body))
            self.wfile.write(body[:sent])
            self.wfile.flush()
        self.close_connection = True
        self.owner.record(Request(self.command, self.path, ask_range, status, sent))


def _range_start(header: str | None) -> int | None:
    """The first byte of an open "bytes=N-" range, or None for no (or another) range."""
    match = re.fullmatch(r"bytes=(\d+)-", header or "", re.ASCII)
    return int(match.group(1)) if match else None
