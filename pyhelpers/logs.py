"""Logging for every Python process of the layer, with the rules of docker/common/scripts/logs.sh.

One parser of LOG_LEVEL (debug, info, warn, error; default info; any other value acts as info,
as logs.sh's filter does: main.sh refuses it before anything starts) and LOG_FORMAT (text or
json; default text). One line format:
    text   "[prefix] <mark> message" (marks: ✓ success, ↷ skipped, ⚠ warning, ✗ error, · debug;
           none for info)
    json   {"ts": "<UTC, Z>", "level": ..., "prefix": ..., "msg": ...}, one object per line;
           a line a child process wrote (the chat engine's) adds "source" and keeps its text
           as msg
Used by the build-time helpers (pyhelpers/build_log.py) and the bootstrap's src/config call
(emit), and through pyhelpers/log_setup.py by the served app and uvicorn (Python's logging
module, which this module does not import: the bootstrap's start does without it).
Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping

LEVELS = ("debug", "info", "warn", "error")
DEFAULT_LEVEL = "info"
FORMATS = ("text", "json")  # the first is the default
# The levels by the numbers of Python's logging module (a record's levelno is one of them).
DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50
# Python's level of each logs.sh level, and back (CRITICAL is an error line too).
PYTHON_LEVEL = {"debug": DEBUG, "info": INFO, "warn": WARNING, "error": ERROR}
_MARK = {DEBUG: "·", WARNING: "⚠", ERROR: "✗", CRITICAL: "✗"}


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
    if level >= PYTHON_LEVEL[level_name()]:
        print(line(level, prefix, message, mark), file=sys.stderr, flush=True)


def _level_of(level: int) -> str:
    """The logs.sh name of a Python level."""
    if level >= ERROR:
        return "error"
    if level >= WARNING:
        return "warn"
    return "info" if level >= INFO else "debug"
