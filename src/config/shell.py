"""Settings the container's shell uses around the app: uvicorn's command, the warmup probe and the
environment every HTTP client and the Hub library get. Defined, defaulted and checked here; the
bootstrap exports the values (src/config/resolve.py), and docker/common/scripts reads them.
Standard library only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from src.config.parse import SettingsError, choice, get, integer, number, seconds

_HOST = re.compile(r"[A-Za-z0-9._:-]+")
_APP = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*")
# Values of HF_HUB_OFFLINE that huggingface_hub reads as on.
_ON = ("1", "on", "yes", "true")
# The variables each HTTP client reads a CA bundle from (requests, OpenSSL, curl).
CA_VARS = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")


@dataclass(frozen=True)
class Server:
    """uvicorn's command and the warmup probe."""

    server_app: str = "src.server:app"
    host: str = "0.0.0.0"  # noqa: S104 - a container serves on all its interfaces
    port: int = 8000
    uvicorn_workers: int = 1
    # Gateway workers over one chat engine (src/supervisor.py); 1: the one process of old.
    gateway_workers: int = 1
    warmup_fail_exit: bool = False
    warmup_request_timeout_s: float = 2.0
    warmup_wait_interval_s: float | None = None


def port(env: Mapping[str, str]) -> int:
    """PORT: the port uvicorn listens on."""
    return integer(env, "PORT", Server.port, 1, 65535)


def gateway_workers(env: Mapping[str, str]) -> int:
    """GATEWAY_WORKERS: uvicorn workers serving the routes over one chat engine (1 to 64)."""
    return integer(env, "GATEWAY_WORKERS", Server.gateway_workers, 1, 64)


def load_server(env: Mapping[str, str]) -> Server:
    """Read and check the server's settings; SettingsError naming the first bad one."""
    app, host = get(env, "SERVER_APP") or Server.server_app, get(env, "HOST") or Server.host
    if not _APP.fullmatch(app):
        raise SettingsError(f"SERVER_APP={app!r} is not valid; use module:attribute "
                            f"(default {Server.server_app})")
    if not _HOST.fullmatch(host):
        raise SettingsError(f"HOST={host!r} is not valid; use an address or host name such as "
                            "0.0.0.0 (all IPv4), :: (all IPv6) or 127.0.0.1")
    interval = number(env, "WARMUP_WAIT_INTERVAL", float, 0.001, 999999)
    return Server(
        server_app=app, host=host, port=port(env),
        uvicorn_workers=integer(env, "UVICORN_WORKERS", Server.uvicorn_workers, 1, 999),
        gateway_workers=gateway_workers(env),
        warmup_fail_exit=choice(env, "WARMUP_FAIL_EXIT", ("0", "1"), "0") == "1",
        warmup_request_timeout_s=seconds(env, "WARMUP_REQUEST_TIMEOUT",
                                         Server.warmup_request_timeout_s, 0.001, 999999),
        warmup_wait_interval_s=None if interval is None else float(interval),
    )


def hub_offline_on(env: Mapping[str, str]) -> bool:
    """Whether HF_HUB_OFFLINE is on, as huggingface_hub reads it (1, on, yes, true; any case)."""
    return get(env, "HF_HUB_OFFLINE").lower() in _ON


def ca_bundle(env: Mapping[str, str]) -> str | None:
    """CA_BUNDLE: a mounted CA bundle every HTTP client is to use; None when unset."""
    path = get(env, "CA_BUNDLE")
    if not path:
        return None
    try:
        readable = os.access(path, os.R_OK) and Path(path).stat().st_size > 0
    except OSError:
        readable = False
    if not readable:
        raise SettingsError(
            f"CA_BUNDLE '{path}' is not a readable, non-empty file; mount the bundle there (e.g. "
            f"-v /etc/ssl/certs/ca-certificates.crt:{path}:ro) or unset CA_BUNDLE")
    return path
