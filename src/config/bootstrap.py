"""The bootstrap's one call into src/config: resolve the settings the shell uses, or say why not.

    python3 -m src.config --stack STACK

prints, for each setting src/config resolves for the shell, three NUL-terminated fields on
stdout: its name, its source (user, default, derived) and its value, which the bootstrap
exports as they are (docker/common/scripts/settings.sh, settings_resolve): nothing a user wrote
is ever evaluated. An invalid value is one line on stderr naming the variable and status 1.
Standard library and src/config only, so it starts in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import sys

from pyhelpers.build_log import log_err
from src.config.parse import SettingsError
from src.config.timers import HEALTHCHECKS, timer_records


def main(argv: list[str] | None = None) -> int:
    """Print the resolved settings of a stack for the shell; 1 with one line when one is bad."""
    parser = argparse.ArgumentParser(prog="python3 -m src.config", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", required=True, choices=tuple(HEALTHCHECKS))
    args = parser.parse_args(argv)
    try:
        records = timer_records(os.environ, args.stack)
    except SettingsError as exc:
        log_err(f"[{args.stack}]", str(exc))
        return 1
    sys.stdout.write("".join(f"{name}\0{source}\0{value}\0" for name, source, value in records))
    return 0
