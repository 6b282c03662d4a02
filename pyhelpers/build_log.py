"""Log lines for the build-time Python helpers, in the format of common/scripts/logs.sh.

Every line goes to stderr through pyhelpers/logs.py ("[prefix] <mark> message", or one JSON
object with LOG_FORMAT=json); LOG_LEVEL=debug makes the entry points show tracebacks, warn and
error drop the lower lines. run_entry() runs an entry point's main(): an expected failure
(BuildError and its subclasses, ValueError, and OSError: a full disk, a read-only or missing
path) becomes one line and status 1.
"""

from __future__ import annotations

from collections.abc import Callable

from pyhelpers.logs import ERROR, INFO, WARNING, debug_enabled, emit


class BuildError(Exception):
    """An expected build-step failure; its message is the one line a build log shows."""


def log_info(prefix: str, message: str) -> None:
    """Log an informational line."""
    emit(INFO, prefix, message)


def log_success(prefix: str, message: str) -> None:
    """Log a success line, marked ✓."""
    emit(INFO, prefix, message, "✓")


def log_skip(prefix: str, message: str) -> None:
    """Log a step that was skipped on purpose, marked ↷."""
    emit(INFO, prefix, message, "↷")


def log_warn(prefix: str, message: str) -> None:
    """Log a warning, marked ⚠."""
    emit(WARNING, prefix, message)


def log_err(prefix: str, message: str) -> None:
    """Log an error, marked ✗."""
    emit(ERROR, prefix, message)


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
