"""Logging for every Python process of the layer, with the rules of docker/common/scripts/logs.sh.

One parser of LOG_LEVEL (debug, info, warn, error; default info; any other value acts as info,
as logs.sh's filter does: main.sh refuses it before anything starts) and LOG_FORMAT (text or
json; default text). One line format:
    text   "[prefix] <mark> message" (marks: ✓ success, ↷ skipped, ⚠ warning, ✗ error, · debug;
           none for info)
    json   {"ts": "<UTC, Z>", "level": ..., "prefix": ..., "msg": ...}, one object per line;
           a line a child process wrote (the chat engine's) adds "source" and keeps its text
           as msg
Used by the build-time helpers (pyhelpers/build_log.py), the bootstrap's src/config call, the
served app (src/runtime.py: setup()) and uvicorn, which starts with `--log-config
pyhelpers/uvicorn_log.json` (stderr_handler). Standard library only.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping

LEVELS = ("debug", "info", "warn", "error")
DEFAULT_LEVEL = "info"
FORMATS = ("text", "json")  # the first is the default
# Python's level of each logs.sh level, and back (CRITICAL is an error line too).
_PYTHON_LEVEL = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
                 "error": logging.ERROR}
_MARK = {logging.DEBUG: "·", logging.WARNING: "⚠", logging.ERROR: "✗", logging.CRITICAL: "✗"}


def level_name(env: Mapping[str, str] = os.environ) -> str:
    """LOG_LEVEL as logs.sh reads it: one of LEVELS; unset or anything else is info."""
    value = env.get("LOG_LEVEL") or DEFAULT_LEVEL
    return value if value in LEVELS else DEFAULT_LEVEL


def json_lines(env: Mapping[str, str] = os.environ) -> bool:
    """Whether LOG_FORMAT asks for one JSON object per line (unset: text)."""
    return (env.get("LOG_FORMAT") or FORMATS[0]) == "json"


def debug_enabled(env: Mapping[str, str] = os.environ) -> bool:
    """Whether LOG_LEVEL=debug (debug lines, and tracebacks of expected failures)."""
    return level_name(env) == "debug"


def line(level: int, prefix: str, message: str, mark: str | None = None,
         source: str | None = None, created: float | None = None,
         request_id: str | None = None) -> str:
    """One log line (without its newline) in the format LOG_FORMAT asks for.

    prefix is written as logs.sh takes it, "[server]" (JSON drops the brackets); mark replaces
    the level's own (✓, ↷); a request id ends a text line (` request_id=<id>`) or is a field.
    """
    if json_lines():
        fields = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                      time.gmtime(time.time() if created is None else created)),
                  "level": _level_of(level), "prefix": prefix.removeprefix("[").removesuffix("]"),
                  "msg": message}
        if source:
            fields["source"] = source
        if request_id:
            fields["request_id"] = request_id
        return json.dumps(fields, ensure_ascii=False)
    mark = _MARK.get(level, "") if mark is None else mark
    rid = f"request_id={request_id}" if request_id else ""
    return " ".join(part for part in (prefix, mark, message, rid) if part)


def emit(level: int, prefix: str, message: str, mark: str | None = None) -> None:
    """Write one line to stderr when LOG_LEVEL lets it through."""
    if level >= _PYTHON_LEVEL[level_name()]:
        print(line(level, prefix, message, mark), file=sys.stderr, flush=True)


def _level_of(level: int) -> str:
    """The logs.sh name of a Python level."""
    if level >= logging.ERROR:
        return "error"
    if level >= logging.WARNING:
        return "warn"
    return "info" if level >= logging.INFO else "debug"


class LineFormatter(logging.Formatter):
    """Log records as `line` writes them; a record's `prefix`, `mark` and `source` (given with
    extra=) win over the formatter's prefix and the level's mark; its `request_id` (set by
    src/request_id.py's filter) is written too."""

    def __init__(self, prefix: str = "") -> None:
        """prefix: what lines without one of their own carry ("[server]")."""
        super().__init__()
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        """Render a record, its traceback (if any) included in the message."""
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        return line(record.levelno, getattr(record, "prefix", self.prefix), message,
                    getattr(record, "mark", None), getattr(record, "source", None),
                    record.created, getattr(record, "request_id", None))


def stderr_handler(prefix: str = "") -> logging.Handler:
    """A stderr handler with LineFormatter, passing what LOG_LEVEL lets through (uvicorn's
    log config names this factory)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter(prefix))
    handler.setLevel(_PYTHON_LEVEL[level_name()])
    return handler


def setup(logger_name: str, prefix: str) -> logging.Logger:
    """Send a logger (and its children) to stderr in the layer's format, at LOG_LEVEL; once."""
    logger = logging.getLogger(logger_name)
    if not logger.handlers:
        logger.addHandler(stderr_handler(prefix))
        logger.setLevel(_PYTHON_LEVEL[level_name()])
        logger.propagate = False
    return logger
