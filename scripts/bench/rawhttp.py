"""A lean HTTP/1.1 load client for the benchmarks: pre-built requests on keep-alive sockets.

The benchmarks run client, app and engine on the same small machine; a full HTTP client (httpx)
costs more CPU per request than the app under test and becomes what is measured. This one
writes a request built once, reads the head, then the body (Content-Length or chunked), and
notes when the first server-sent event (`data:`) arrived.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

EVENT = b"data:"


class BenchHTTPError(RuntimeError):
    """The server answered something the benchmark cannot count (a bad status or framing)."""


@dataclass
class Result:
    """One response: status, seconds to its first event and to its end, event count, body."""

    status: int
    first_s: float
    total_s: float
    events: int
    body: bytes


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Target:
    """One URL, one pre-built POST, and a pool of idle keep-alive connections to it."""

    def __init__(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        """Build the request bytes once; connections open on demand."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"url {url!r} is not http://HOST:PORT/PATH")
        self.host, self.port = parts.hostname, parts.port
        lines = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 "Content-Type: application/json", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        self.idle: list[Conn] = []

    async def post(self) -> Result:
        """Send the request on an idle connection (or a new one) and read the whole answer.

        An idle connection that the server closed meanwhile (its keep-alive timeout: uvicorn's
        is 5 s) answers nothing; the request then goes again on a new one, as HTTP clients do.
        """
        while True:
            reused = bool(self.idle)
            conn = self.idle.pop() if reused else await asyncio.open_connection(self.host,
                                                                                self.port)
            reader, writer = conn
            start = time.perf_counter()
            writer.write(self.request)
            try:
                status, keep, body = await _read_head(reader)
                break
            except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
                writer.close()
                nothing = not isinstance(exc, asyncio.IncompleteReadError) or not exc.partial
                if not (reused and nothing):
                    raise
        first, events, pieces = 0.0, 0, []
        async for piece in body:
            pieces.append(piece)
            if not first and EVENT in piece:
                first = time.perf_counter()
            events += piece.count(EVENT)
        end = time.perf_counter()
        if keep:
            self.idle.append(conn)
        else:
            writer.close()
        return Result(status, (first or end) - start, end - start, events, b"".join(pieces))

    async def close(self) -> None:
        """Close every idle connection."""
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, bool, AsyncIterator[bytes]]:
    """Status, keep-alive, and an async iterator over the body pieces."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    try:
        status = int(head[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        raise BenchHTTPError(f"not an HTTP status line: {head[0]!r}") from None
    fields = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip().lower()
    keep = fields.get("connection") != "close"
    if fields.get("transfer-encoding") == "chunked":
        return status, keep, _chunks(reader)
    if "content-length" in fields:
        return status, keep, _exactly(reader, int(fields["content-length"]))
    raise BenchHTTPError(f"status {status} response has neither Content-Length nor chunks")


async def _exactly(reader: asyncio.StreamReader, size: int) -> AsyncIterator[bytes]:
    """The body of a Content-Length response, in one piece."""
    if size:
        yield await reader.readexactly(size)


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """The pieces of a chunked body, each as soon as it arrives."""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # the empty trailer
            return
        data = await reader.readexactly(size + 2)
        yield data[:-2]
