"""The edge of /v1/*: every check a request passes before the app parses a byte of its body."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.auth import encoded_keys, key_is_valid, presented_key
from src.errors import RETRY_AFTER_S, ApiError, error_response, key_error, sse_error_event
from src.runtime import Runtime

log = logging.getLogger("src.edge")

SHUTTING_DOWN = "the server is shutting down; retry on another replica"


@dataclass(frozen=True)
class EdgeRoute:
    """What the edge knows of a /v1 route: the engine it needs and its largest body."""

    engine: str | None = None
    max_body: int = 0
    limit_name: str = "this route takes no body"


class _Exchange:
    """One request past the edge: its cancel scope and what of the answer has been sent."""

    __slots__ = ("body_read", "complete", "cut", "send_to_client", "started", "stream")

    def __init__(self, send: Send, body_deadline: float) -> None:
        """A scope that ends the request when the body is late or the server cuts it."""
        self.cut = anyio.CancelScope(deadline=body_deadline)
        self.send_to_client = send
        self.body_read = self.started = self.complete = self.stream = False

    async def send(self, message: Message) -> None:
        """Pass a message on, noting whether the answer started, is an event stream, ended."""
        if message["type"] == "http.response.start":
            self.started = True
            self.stream = any(name == b"content-type" and value.startswith(b"text/event-stream")
                              for name, value in message.get("headers", ()))
        elif not message.get("more_body", False):
            self.complete = True
        await self.send_to_client(message)


def _declared_body(headers: list[tuple[bytes, bytes]]) -> tuple[int | None, bool, bytes]:
    """(Content-Length or None, whether a body follows, Content-Type) from the raw headers."""
    length, chunked, content_type = None, False, b""
    for name, value in headers:
        if name == b"content-length":
            length = int(value) if value.isdigit() else None
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"content-type":
            content_type = value
    return length, chunked or bool(length), content_type


def _is_json(content_type: bytes) -> bool:
    """True for application/json and any application/*+json media type."""
    media = content_type.partition(b";")[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/")
                                            and media.endswith(b"+json"))


class EdgeMiddleware:
    """Checks every /v1 request in this order, answering in OpenAI's error shape:

    the key from the headers (401), draining (503), the route's engine deployed (404), the
    declared body size (413) and type (415), a slot among MAX_CONCURRENT_CONNECTIONS (429);
    then the body is read whole within BODY_TIMEOUT_S (408) and the route's size (413) and
    handed to the app. A request refused before its body is read gets `Connection: close`,
    so a body still on its way costs nothing. The runtime can cut a request in flight short:
    an event stream then ends with an error event, an answer not yet started is a 503.
    """

    def __init__(self, app: ASGIApp, runtime: Runtime, routes: dict[str, EdgeRoute]) -> None:
        """Wrap the app; routes: path → what the edge knows of it (others take no body)."""
        self.app, self.runtime, self.routes = app, runtime, routes
        settings = runtime.settings
        self.keys = encoded_keys(settings.api_keys)
        self.deploy_mode = settings.deploy_mode
        self.body_timeout_s = settings.body_timeout_s
        share = (f", {settings.max_in_flight_here} in each of GATEWAY_WORKERS="
                 f"{settings.gateway_workers}" if settings.gateway_board else "")
        self.too_many = ("too many requests in flight (MAX_CONCURRENT_CONNECTIONS="
                         f"{settings.max_concurrent_connections}{share})")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check, read the body, run the app; answer for a request that was cut short."""
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        route = self.routes.get(scope["path"], EdgeRoute())
        length, has_body, content_type = _declared_body(scope["headers"])
        health = self.runtime.health
        refusal = self._refusal(scope, route, length, has_body, content_type)
        if refusal is None:
            exchange = _Exchange(send, anyio.current_time() + self.body_timeout_s)
            if not health.try_enter(exchange.cut):
                refusal = ApiError(429, self.too_many, "rate_limit_exceeded",
                                   {"Retry-After": "1"})
        if refusal is not None:
            await self._answer(refusal, scope, receive, send, close=has_body)
            return
        try:
            with exchange.cut:
                body = await _read_body(receive, route) if has_body else b""
                exchange.body_read = True
                exchange.cut.deadline = float("inf")
                if isinstance(body, ApiError):
                    await self._answer(body, scope, receive, send, close=True)
                    return
                if body is not None:  # None: the client left while sending it
                    await self.app(scope, _replay(body, receive), exchange.send)
        finally:
            health.leave(exchange.cut)
        if exchange.cut.cancelled_caught:
            await self._after_cut(exchange, scope, receive)

    def _refusal(self, scope: Scope, route: EdgeRoute, length: int | None, has_body: bool,
                 content_type: bytes) -> ApiError | None:
        """What the headers alone say against the request; None when it may go on."""
        if not key_is_valid(presented_key(scope["headers"]), self.keys):
            return key_error()
        health = self.runtime.health
        if health.draining:
            return ApiError(503, SHUTTING_DOWN, "server_shutting_down",
                            {"Retry-After": RETRY_AFTER_S})
        if route.engine is not None and route.engine not in health.states:
            return ApiError(404, f"the {route.engine} model is not deployed (DEPLOY_MODE="
                            f"{self.deploy_mode}); DEPLOY_MODE={route.engine} or both serves "
                            "this route", "not_found_error")
        if length is not None and length > route.max_body:
            return _too_large(route, f"{length} bytes")
        if has_body and not _is_json(content_type):
            shown = content_type[:40].decode("latin-1") or "none"
            return ApiError(415, f"the body must be JSON, sent with 'Content-Type: "
                            f"application/json' (Content-Type: {shown!r})",
                            "invalid_request_error")
        return None

    async def _answer(self, error: ApiError, scope: Scope, receive: Receive, send: Send,
                      close: bool) -> None:
        """Send an error; close: end the connection after it (a body may still be coming)."""
        response = error_response(error)
        if close:
            response.headers["connection"] = "close"
        await response(scope, receive, send)

    async def _after_cut(self, exchange: _Exchange, scope: Scope, receive: Receive) -> None:
        """Finish the answer of a request that was cut short (late body, or shutdown)."""
        if not self.runtime.health.draining and not exchange.body_read:
            error = ApiError(408, f"the body did not arrive within BODY_TIMEOUT_S="
                             f"{self.body_timeout_s:g}s", "request_timeout")
            await self._answer(error, scope, receive, exchange.send_to_client, close=True)
            return
        error = ApiError(503, SHUTTING_DOWN, "server_shutting_down",
                         {"Retry-After": RETRY_AFTER_S})
        if not exchange.started:
            await self._answer(error, scope, receive, exchange.send_to_client, close=True)
        elif exchange.stream and not exchange.complete:
            log.warning("stream cut: %s %s ended with an error event (the server is shutting "
                        "down)", scope["method"], scope["path"])
            await exchange.send_to_client({"type": "http.response.body",
                                           "body": sse_error_event(error), "more_body": False})
        # Else a whole answer was cut between its start and its body: uvicorn closes the
        # connection, and the client sees it incomplete.


def _too_large(route: EdgeRoute, size: str) -> ApiError:
    """The 413 for a body over the route's limit."""
    return ApiError(413, f"the body is too large ({size}); this route takes at most "
                    f"{route.max_body} bytes ({route.limit_name})", "request_too_large")


async def _read_body(receive: Receive, route: EdgeRoute) -> bytes | ApiError | None:
    """The whole body; a 413 once it passes the route's limit; None when the client left."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > route.max_body:
            return _too_large(route, f"more than {route.max_body} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body read at the edge once, then the client's own messages."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
