"""Every error the app answers, in OpenAI's shape: {"error": {message, type, param, code}}."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.responses import JSONResponse

RETRY_AFTER_S = "5"
# A validation answer names at most this many problems, each location part cut to LOC_CHARS:
# a body's keys are the client's input, and an answer never repeats much of it.
MAX_REPORTED = 3
LOC_CHARS = 40


class ApiError(Exception):
    """An error answered in OpenAI's error shape."""

    def __init__(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None,
                 param: str | None = None):
        """Status, message, OpenAI error type (e.g. `invalid_request_error`), headers, param."""
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind
        self.headers, self.param = headers, param

    def body(self) -> dict[str, Any]:
        """The {"error": {...}} object."""
        return {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.status}}


def key_error() -> ApiError:
    """The 401 for a request without a valid API key."""
    return ApiError(401, "missing or invalid API key: send 'Authorization: Bearer <key>' or "
                    "'X-API-Key: <key>'", "invalid_api_key")


def error_response(exc: ApiError) -> JSONResponse:
    """The JSON response for an ApiError."""
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def sse_error_event(exc: ApiError) -> bytes:
    """A server-sent event holding the error object: how a cut stream ends (no [DONE] after).

    It starts with a blank line, which ends any event the cut left unfinished (blank lines
    between events are ignored).
    """
    return b"\n\ndata: " + json.dumps(exc.body()).encode() + b"\n\n"


def _location(loc: Sequence[Any]) -> str:
    """A validation error's location as `messages.0.role`, without the leading `body`."""
    parts = [str(part) for part in loc]
    if parts[:1] == ["body"]:
        parts = parts[1:]
    return ".".join(p if len(p) <= LOC_CHARS else p[:LOC_CHARS] + "…" for p in parts)


def validation_error(errors: Sequence[Any]) -> ApiError:
    """The answer to a body that failed validation: what is wrong, never the input itself.

    A body that is not JSON is 400; one that does not fit the schema is 422. Either names at
    most MAX_REPORTED problems and says how many more there are.
    """
    first = errors[0] if errors else {"loc": (), "msg": "invalid body", "type": ""}
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "")
        return ApiError(400, f"the body is not valid JSON: {reason}", "invalid_request_error")
    parts = []
    for error in errors[:MAX_REPORTED]:
        where = _location(error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', '')}" if where else str(error.get("msg", "")))
    more = len(errors) - MAX_REPORTED
    tail = f" (and {more} more)" if more > 0 else ""
    return ApiError(422, "invalid request body: " + "; ".join(parts) + tail,
                    "invalid_request_error", param=_location(first.get("loc", ())) or None)
