"""Log lines for the build-time Python helpers, in the format of common/scripts/logs.sh.

Every line goes to stderr as "[prefix] <mark> message"; LOG_LEVEL=debug adds debug lines and
makes the entry points show tracebacks. run_entry() runs an entry point's main(): an expected
failure (BuildError and its subclasses, ValueError, and OSError: a full disk, a read-only or
missing path) becomes one line and status 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


class BuildError(Exception):
    """An expected build-step failure; its message is the one line a build log shows."""


def _emit(prefix: str, mark: str, message: str) -> None:
    """Write one log line to stderr."""
    head = f"{prefix} {mark} " if mark else f"{prefix} "
    print(f"{head}{message}", file=sys.stderr, flush=True)


def debug_enabled() -> bool:
    """Return True when LOG_LEVEL asks for debug output (and tracebacks)."""
    return os.environ.get("LOG_LEVEL", "").lower() == "debug"


def log_info(prefix: str, message: str) -> None:
    """Log an informational line."""
    _emit(prefix, "", message)


def log_success(prefix: str, message: str) -> None:
    """Log a success line, marked ✓."""
    _emit(prefix, "✓", message)


def log_skip(prefix: str, message: str) -> None:
    """Log a step that was skipped on purpose, marked ↷."""
    _emit(prefix, "↷", message)


def log_warn(prefix: str, message: str) -> None:
    """Log a warning, marked ⚠."""
    _emit(prefix, "⚠", message)


def log_err(prefix: str, message: str) -> None:
    """Log an error, marked ✗."""
    _emit(prefix, "✗", message)


def run_entry(main: Callable[[], None], prefix: str) -> int:
    """Run an entry point's `main`; known failures become one line on stderr and status 1."""
    try:
        main()
    except (BuildError, ValueError, OSError) as exc:
        if debug_enabled():
            raise
        log_err(prefix, str(exc))
        return 1
    return 0
