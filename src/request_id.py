"""Request ids: the id of the /v1 request being served, and the log filter that writes it."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Iterable

HEADER = b"x-request-id"
# A client's own id is kept when it is 1 to 128 of these characters (no spaces, quotes or
# control characters: it goes into log lines and on to the engine as it is); else a new one.
_SANE = re.compile(rb"[A-Za-z0-9._:=+/@-]{1,128}")

# The id of the request this task serves; None outside a /v1 request. Each request runs in a
# task of its own (uvicorn), which copies the context: a value never leaks to another request.
current: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def from_headers(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-Id when it is sane, else a new id (32 hex digits)."""
    for name, value in headers:
        if name == HEADER:
            if _SANE.fullmatch(value):
                return value.decode("ascii")
            break
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Adds `request_id=<id>` to every record logged while a /v1 request is served.

    On a handler, it sees the records of every logger that reaches it. The access log's
    formatter (uvicorn's) builds its line from the record's arguments, not its message, so the
    id goes there as an attribute a formatter prints (RequestIdFormatter); on the app's own
    records it is appended to the message itself.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Note the current id on the record; append it to an app record's message (once)."""
        if hasattr(record, "request_id"):
            return True
        rid = current.get()
        record.request_id = rid
        if rid is not None and record.name.startswith("src"):
            record.msg = f"{record.getMessage()} request_id={rid}"
            record.args = None
        return True


class RequestIdFormatter(logging.Formatter):
    """Another formatter's line, with ` request_id=<id>` after it when the record has one."""

    def __init__(self, inner: logging.Formatter) -> None:
        """Wrap inner (uvicorn's access formatter)."""
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        """The inner formatter's line and the id."""
        line = self.inner.format(record)
        rid = getattr(record, "request_id", None)
        return line if rid is None else f"{line} request_id={rid}"


def install_on_access_log() -> None:
    """Write the request id into uvicorn's access log lines (its handlers, as configured)."""
    for handler in logging.getLogger("uvicorn.access").handlers:
        if not isinstance(handler.formatter, RequestIdFormatter):
            handler.addFilter(RequestIdFilter())
            handler.setFormatter(RequestIdFormatter(handler.formatter or logging.Formatter()))
