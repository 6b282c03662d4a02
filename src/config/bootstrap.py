"""The bootstrap's one call into src/config: resolve the settings the shell uses, or say why not.

    python3 -m src.config --stack STACK [--download]
    python3 -m src.config --stack STACK --explain [--source NAME=SOURCE]...

resolves and checks the settings of a stack the shell has not decided (src/config/resolve.py)
and prints, for each value it sets, three NUL-terminated fields on stdout: the name, the source
(default, derived, image, model config, engine config, deploy mode, gpu preset, user) and the
value, which the bootstrap exports as they are (docker/common/scripts/settings.sh,
settings_resolve): nothing a user wrote is ever evaluated. Each invalid value is one line on
stderr naming the variable, and the status is 1. The standard library, src/config and the
small pyhelpers readers only, so it starts in milliseconds. --explain prints the table of
`main.sh --explain` instead (src/config/explain.py).
"""

from __future__ import annotations

import argparse
import os
import sys

from pyhelpers.build_log import log_err, log_warn
from src.config.explain import explain
from src.config.resolve import resolve
from src.config.timers import HEALTHCHECKS


def main(argv: list[str] | None = None) -> int:
    """Print the resolved settings of a stack for the shell; 1 with one line when one is bad."""
    parser = argparse.ArgumentParser(prog="python3 -m src.config", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", required=True, choices=tuple(HEALTHCHECKS))
    parser.add_argument("--download", action="store_true",
                        help="for main.sh --download-models: the Hub must be reachable")
    parser.add_argument("--explain", action="store_true",
                        help="print every setting of the stack with its value and source")
    parser.add_argument("--source", action="append", default=[], metavar="NAME=SOURCE",
                        help="with --explain: where the bootstrap got a value (repeatable)")
    args = parser.parse_args(argv)
    if args.explain:
        sources = dict(item.split("=", 1) for item in args.source if "=" in item)
        sys.stdout.write(explain(os.environ, args.stack, sources))
        return 0
    prefix = f"[{args.stack}]"
    found = resolve(os.environ, args.stack, args.download)
    for warning in found.warnings:
        log_warn(prefix, warning)
    for error in found.errors:
        log_err(prefix, error)
    if found.errors:
        return 1
    sys.stdout.write("".join(f"{name}\0{source}\0{value}\0"
                             for name, source, value in found.records))
    return 0
