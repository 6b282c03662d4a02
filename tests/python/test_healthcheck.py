"""pyhelpers/healthcheck.py: the images' HEALTHCHECK, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server() -> Iterator[tuple[int, list[int]]]:
    """A server on a free port whose /healthz answers the first status of the list."""
    statuses = [200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            """Answer /healthz with the current status."""
            self.send_response(statuses[0] if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            """Quiet."""

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], statuses
    httpd.shutdown()


def check(**env: str) -> subprocess.CompletedProcess[str]:
    """`python -m pyhelpers.healthcheck` as Docker runs it: the container's env, cwd /app."""
    return subprocess.run([sys.executable, "-m", "pyhelpers.healthcheck"], cwd=ROOT,
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT),
                               "HTTP_PROXY": "http://127.0.0.1:9", **env},
                          capture_output=True, text=True, timeout=30, check=False)


def test_healthy_on_2xx_unhealthy_on_anything_else(server: tuple[int, list[int]]) -> None:
    port, statuses = server
    assert check(PORT=str(port)).returncode == 0  # the proxy is never used
    statuses[0] = 503
    proc = check(PORT=str(port))
    assert proc.returncode == 1
    assert proc.stderr == f"healthcheck: http://127.0.0.1:{port}/healthz answered 503\n"


def test_nothing_listening_or_a_bad_port_is_unhealthy_in_one_line() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    proc = check(PORT=str(free))
    assert proc.returncode == 1 and proc.stderr.startswith("healthcheck: ")
    proc = check(PORT="80x")
    assert (proc.returncode, proc.stderr) == (
        1, "healthcheck: PORT='80x' is not valid; expected an integer between 1 and 65535\n")
