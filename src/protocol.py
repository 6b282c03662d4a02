"""uvicorn's httptools protocol with limits on request headers (`--http src.protocol:BoundedHttp`).

uvicorn reads headers without a size or time limit; this protocol answers 431 when a request's
head (its target and header lines, see head_size) passes MAX_HEADER_BYTES (checked when the head
is complete, and while it arrives once its raw bytes pass the limit by HEAD_FRAMING, so that
memory stays bounded), and 408 when the head is not complete HEADER_TIMEOUT_S after the
connection opened or the request began; either closes the connection. It also closes a
connection whose answer went out before its request body arrived whole (an early 401, 404,
405, 413...), so a client cannot keep one open by trickling a body nobody reads.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from src.config.settings import header_limits
from src.errors import ApiError

HEAD_FRAMING = 1024  # raw bytes of a head that head_size leaves out (request line...), at most


@functools.cache
def _limits() -> tuple[int, float]:
    """MAX_HEADER_BYTES and HEADER_TIMEOUT_S, read once per process."""
    return header_limits(os.environ)


def head_size(url: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """The size MAX_HEADER_BYTES bounds: the target, and per header name, value and 4 bytes.

    The 4 bytes are a header line's separators (`: ` and CRLF).
    """
    return len(url) + sum(len(name) + len(value) + 4 for name, value in headers)


def _error_bytes(error: ApiError) -> bytes:
    """A whole HTTP answer for an error, with `Connection: close`."""
    body = json.dumps(error.body()).encode()
    head = (b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % len(body))
    return STATUS_LINE[error.status] + head + body


class BoundedHttp(HttpToolsProtocol):
    """HttpToolsProtocol with a size and a time limit on each request's headers.

    The header clock runs from the connection's start, or from the first byte after a request
    while the next one's headers are awaited, until those headers are complete; an idle
    keep-alive connection is uvicorn's (--timeout-keep-alive) until a byte arrives.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """As uvicorn's, plus the header limits and this connection's header state."""
        super().__init__(*args, **kwargs)
        self.max_header_bytes, self.header_timeout_s = _limits()
        self.awaiting_headers = True  # no request, or one whose headers are not complete
        self.header_bytes: int | None = None  # the current request's, once it began
        self.header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the header clock: a connection that sends nothing is closed in time too."""
        super().connection_made(transport)
        self._start_header_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the header clock."""
        self._stop_header_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser; count the bytes of headers still incomplete, refuse past the limit."""
        if self.awaiting_headers and self.header_timer is None:
            self._start_header_clock()
        super().data_received(data)
        if self.header_bytes is not None and not self.transport.is_closing():
            # Raw bytes: the request line and separators the limit leaves out (HEAD_FRAMING),
            # and any end of the previous request read with them, count too; the exact check
            # comes when the head is complete.
            self.header_bytes += len(data)
            if self.header_bytes > self.max_header_bytes + HEAD_FRAMING:
                self._refuse_large_head()

    def on_message_begin(self) -> None:
        """A request begins: its header bytes are counted from here."""
        super().on_message_begin()
        self.header_bytes = 0

    # Once the connection is closing (a refusal), the rest of the bytes already read are
    # parsed still: no request, body or end of one may reach uvicorn's handling then.

    def on_headers_complete(self) -> None:
        """The headers are in: stop the header clock; refuse a head over the limit, else go on."""
        self.awaiting_headers = False
        self.header_bytes = None
        self._stop_header_clock()
        if self.transport.is_closing():
            return
        if head_size(self.url, self.headers) > self.max_header_bytes:
            self._refuse_large_head()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        """Part of a body: uvicorn's handling, unless the connection is closing."""
        if not self.transport.is_closing():
            super().on_body(body)

    def on_message_complete(self) -> None:
        """The request is in: the next bytes would be the next request's headers."""
        if not self.transport.is_closing():
            super().on_message_complete()
        self.awaiting_headers = True

    def on_response_complete(self) -> None:
        """After an answer: close the connection when its request body never arrived whole."""
        cycle = self.cycle
        if cycle.response_complete and cycle.more_body and not self.transport.is_closing():
            self.transport.close()
            return
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a malformed request, in OpenAI's error shape."""
        self._refuse(ApiError(400, msg, "invalid_request_error"))

    def _start_header_clock(self) -> None:
        """Close the connection unless headers are complete within HEADER_TIMEOUT_S."""
        self.header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _stop_header_clock(self) -> None:
        """Cancel the header clock, if it runs."""
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _headers_late(self) -> None:
        """The header clock ran out: 408 unless an answer is still going out, then close."""
        self.header_timer = None
        if not self.awaiting_headers or self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self._refuse(ApiError(408, "the request headers did not arrive within "
                                  f"HEADER_TIMEOUT_S={self.header_timeout_s:g}s",
                                  "request_timeout"))
        else:
            self.transport.close()

    def _refuse_large_head(self) -> None:
        """Answer 431 and close."""
        self._refuse(ApiError(431, "the request head (target and headers) is larger than "
                              f"MAX_HEADER_BYTES={self.max_header_bytes}",
                              "request_header_fields_too_large"))

    def _refuse(self, error: ApiError) -> None:
        """Answer with an error and close the connection."""
        self.transport.write(_error_bytes(error))
        self.transport.close()
