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
    """Notes the id of the /v1 request being served (or None) on every record a handler sees:
    pyhelpers/logs.py's formatter writes it (` request_id=<id>` after a text line, a
    "request_id" field in JSON), on the app's own lines and uvicorn's access lines alike."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Note the current id on the record, unless it already has one."""
        if getattr(record, "request_id", None) is None:
            record.request_id = current.get()
        return True


def install(logger_names: Iterable[str] = ("", "src", "uvicorn")) -> None:
    """Put the filter on every handler of these loggers (the app's, the root's, and uvicorn's,
    which its access lines reach); once per handler."""
    for name in logger_names:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
                handler.addFilter(RequestIdFilter())
