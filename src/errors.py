"""Every error the app answers, in OpenAI's shape: {"error": {message, type, param, code}}."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

RETRY_AFTER_S = "5"
# A validation answer names at most this many problems, each location part cut to LOC_CHARS:
# a body's keys are the client's input, and an answer never repeats much of it.
MAX_REPORTED = 3
LOC_CHARS = 40
# OpenAI's `type` for the statuses Starlette raises itself (unknown route, wrong method).
HTTP_TYPES = {404: "not_found_error", 405: "method_not_allowed"}


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


def install_error_handlers(app: FastAPI) -> None:
    """Answer ApiError, validation errors, Starlette's 404/405 and any crash in OpenAI's shape."""

    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    async def invalid_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc.errors()))

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = "no such route; /docs and /openapi.json list the routes"
        elif exc.status_code == 405:
            allowed = {k.lower(): v for k, v in (exc.headers or {}).items()}.get("allow", "")
            message = f"method {request.method} is not allowed on this route; allowed: {allowed}"
        else:
            message = str(exc.detail)
        kind = HTTP_TYPES.get(exc.status_code, "invalid_request_error")
        return error_response(ApiError(exc.status_code, message, kind, exc.headers))

    async def crash(_: Request, exc: Exception) -> JSONResponse:
        # The exception goes on to uvicorn, which logs its traceback.
        return error_response(ApiError(500, "internal server error", "server_error"))

    # Starlette types a handler as taking any Exception; each of these gets only its own class.
    app.add_exception_handler(ApiError, api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, invalid_body)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, crash)
