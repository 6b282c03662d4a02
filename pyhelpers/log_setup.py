"""Python's logging module in the layer's line format (pyhelpers/logs.py): a formatter, a stderr
handler at LOG_LEVEL, and the setup of a logger. For the served app (src/runtime.py) and uvicorn,
which starts with `--log-config pyhelpers/uvicorn_log.json` (stderr_handler). Standard library
only.
"""

from __future__ import annotations

import logging
import sys

from pyhelpers.logs import PYTHON_LEVEL, level_name, line


class LineFormatter(logging.Formatter):
    """Log records as pyhelpers.logs.line writes them; a record's `prefix`, `mark` and
    `source` (given with extra=) win over the formatter's prefix and the level's mark; its
    `request_id` (set by src/request_id.py's filter) is written too."""

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
    handler.setLevel(PYTHON_LEVEL[level_name()])
    return handler


def setup(logger_name: str, prefix: str) -> logging.Logger:
    """Send a logger (and its children) to stderr in the layer's format, at LOG_LEVEL; once."""
    logger = logging.getLogger(logger_name)
    if not logger.handlers:
        logger.addHandler(stderr_handler(prefix))
        logger.setLevel(PYTHON_LEVEL[level_name()])
        logger.propagate = False
    return logger
