"""The images' HEALTHCHECK: `python -m pyhelpers.healthcheck` exits 0 when the app's /healthz
answers 2xx on this container's PORT (src/config/shell.py reads it), 1 otherwise.

Docker runs it with the container's own environment (not the one the bootstrap exported), so
PORT comes with src/config's default. Each check ends within a second of the HEALTHCHECK's
--timeout (src/config/timers.py). Proxies are never used.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

from src.config.parse import SettingsError
from src.config.shell import port
from src.config.timers import HEALTHCHECKS

# Below every stack's --timeout, so the check ends on its own and says why.
LIMIT_S = min(check.timeout_s for check in HEALTHCHECKS.values()) - 1


def main() -> int:
    """Ask /healthz once; 0 on a 2xx answer, 1 with the reason on stderr otherwise."""
    try:
        url = f"http://127.0.0.1:{port(os.environ)}/healthz"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=LIMIT_S) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (SettingsError, OSError) as exc:
        print(f"healthcheck: {exc}", file=sys.stderr)
        return 1
    if 200 <= status < 300:
        return 0
    print(f"healthcheck: {url} answered {status}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
