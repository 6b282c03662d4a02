"""Load the app's settings (src/config/settings.py) from an env file or this process's
environment, as the served app does at start: print `ok`, or the SettingsError's line and exit 1.

    python tests/apps/settings_of.py [ENV_FILE]   (ENV_FILE: NAME=value lines, as `env` prints)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from src.config.settings import SettingsError, load_settings


def main() -> int:
    """Load the settings; 0 when the app would start with them, 1 with the reason otherwise."""
    env = dict(os.environ)
    if len(sys.argv) > 1:
        lines = Path(sys.argv[1]).read_text(encoding="utf-8").splitlines()
        env = dict(line.split("=", 1) for line in lines if "=" in line)
    try:
        load_settings(env)
    except SettingsError as exc:
        print(exc)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
