"""The bootstrap's one call into src/config: resolve the settings the shell uses, or say why not.

    python3 -m src.config --stack STACK [--download]
    python3 -m src.config --stack STACK --explain [--source NAME=SOURCE]...

resolves and checks the settings of a stack the shell has not decided (src/config/resolve.py)
and prints, for each value it sets, three NUL-terminated fields on stdout: the name, the source
(default, derived, image, model config, engine config, deploy mode, gpu preset, user) and the
value, which the bootstrap exports as they are (docker/common/scripts/settings.sh,
settings_resolve): nothing a user wrote is ever evaluated. Each invalid value is one line on
stderr naming the variable, and the status is 1. --download (for `main.sh --download-models`):
the Hub must be reachable. --explain prints the table of `main.sh --explain` instead
(src/config/explain.py), with where the bootstrap got each value it set (--source, repeatable).
A wrong argument: the usage and status 2. It runs at every container start, so it imports the
standard library, src/config and the small pyhelpers readers only, and reads its arguments
without argparse (which, with the gettext and shutil it loads, is a tenth of its start).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from pyhelpers.build_log import log_err, log_warn
from src.config.explain import explain
from src.config.resolve import resolve
from src.config.timers import HEALTHCHECKS


class UsageError(ValueError):
    """The arguments are not the bootstrap's."""


def parse_args(argv: Sequence[str]) -> tuple[str, bool, bool, dict[str, str]]:
    """Return (stack, download, explain, sources) from the arguments; UsageError names the
    first wrong one."""
    stack, download, explaining, sources = "", False, False, {}
    args = iter(argv)
    for arg in args:
        if arg == "--download":
            download = True
        elif arg == "--explain":
            explaining = True
        elif arg in ("--stack", "--source"):
            value = next(args, None)
            if value is None:
                raise UsageError(f"{arg} needs a value")
            name, is_pair, source = value.partition("=")
            if arg == "--stack":
                stack = value
            elif is_pair and name:
                sources[name] = source
            else:
                raise UsageError(f"--source {value!r} is not NAME=SOURCE")
        else:
            raise UsageError(f"unknown argument {arg!r}")
    if stack not in HEALTHCHECKS:
        raise UsageError(f"--stack {stack!r} is not one of {', '.join(HEALTHCHECKS)}")
    return stack, download, explaining, sources


def main(argv: Sequence[str] | None = None) -> int:
    """Print the resolved settings of a stack for the shell; 1 with one line when one is bad."""
    argv = sys.argv[1:] if argv is None else argv
    if "-h" in argv or "--help" in argv:
        sys.stdout.write(__doc__ or "")
        return 0
    try:
        stack, download, explaining, sources = parse_args(argv)
    except UsageError as exc:
        usage = __doc__.split("\n\n")[1] if __doc__ else ""
        print(f"usage:\n{usage}\npython3 -m src.config: {exc}", file=sys.stderr)
        return 2
    if explaining:
        sys.stdout.write(explain(os.environ, stack, sources))
        return 0
    prefix = f"[{stack}]"
    found = resolve(os.environ, stack, download)
    for warning in found.warnings:
        log_warn(prefix, warning)
    for error in found.errors:
        log_err(prefix, error)
    if found.errors:
        return 1
    sys.stdout.write("".join(f"{name}\0{source}\0{value}\0"
                             for name, source, value in found.records))
    return 0
