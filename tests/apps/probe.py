"""Small ASGI apps that the process-lifecycle tests serve with a real uvicorn.

Each app records what it did into files named by environment variables, so a
test can check behaviour from outside the server process:
  PROBE_DIR          directory for the records below (required by every app)
    pid              the server's PID, written at startup
    shutdown         written by the lifespan shutdown hook (a clean stop)
    switch_at        epoch seconds at which /healthz turns 200 (late app)
    first_ok_at      epoch seconds of the first 2xx /healthz answer (late app)
    requests         one line per /healthz request (hanging app)
    metrics_dir      one line per worker: its PROMETHEUS_MULTIPROC_DIR and what the directory
                     held at start (counting app)
  PROBE_READY_AFTER  seconds the late app answers 503 before 200 (default 2)

Apps: healthy, crashing (exits with status 3 one second after start), late,
never (always 503), hanging (/healthz never answers), stubborn (healthy, but
ignores SIGTERM once started: only SIGKILL stops it) and counting (healthy; each
worker records its prometheus_client directory).
"""

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Handler = Callable[[Receive, Send], Awaitable[None]]

CRASH_STATUS = 3


def _record(name: str, text: str, append: bool = False) -> None:
    """Write (or append) one record file under PROBE_DIR."""
    path = Path(os.environ["PROBE_DIR"]) / name
    with path.open("a" if append else "w", encoding="utf-8") as handle:
        handle.write(text + "\n")


async def _respond(send: Send, status: int, body: bytes) -> None:
    """Send a complete plain-text response."""
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send, on_startup: Callable[[], None]) -> None:
    """Answer the lifespan protocol: run on_startup, and record a clean shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _record("pid", str(os.getpid()))
            on_startup()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            _record("shutdown", "clean")
            await send({"type": "lifespan.shutdown.complete"})
            return


def _app(healthz: Handler, on_startup: Callable[[], None] = lambda: None) -> Any:
    """Build an ASGI app whose /healthz is `healthz`; other paths answer 404."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, on_startup)
        elif scope["path"] == "/healthz":
            await healthz(receive, send)
        else:
            await _respond(send, 404, b"not found")

    return app


async def _ok(receive: Receive, send: Send) -> None:
    """A healthy /healthz."""
    await _respond(send, 200, b"ok")


async def _unavailable(receive: Receive, send: Send) -> None:
    """A /healthz that is never ready."""
    await _respond(send, 503, b"loading")


def _crash_soon() -> None:
    """Make the server process die with CRASH_STATUS one second from now."""
    asyncio.get_running_loop().call_later(1.0, os._exit, CRASH_STATUS)


_switch_at: list[float] = []


def _plan_switch() -> None:
    """Fix and record the moment the late app turns healthy."""
    _switch_at.append(time.time() + float(os.environ.get("PROBE_READY_AFTER", "2")))
    _record("switch_at", f"{_switch_at[0]:.6f}")


async def _late(receive: Receive, send: Send) -> None:
    """503 until the planned switch, then 200; the first 200 is timestamped."""
    now = time.time()
    if now < _switch_at[0]:
        await _respond(send, 503, b"loading")
        return
    if not (Path(os.environ["PROBE_DIR"]) / "first_ok_at").exists():
        _record("first_ok_at", f"{now:.6f}")
    await _respond(send, 200, b"ok")


async def _hang(receive: Receive, send: Send) -> None:
    """Never answer; return only once the client has given up and disconnected."""
    _record("requests", f"{time.time():.6f}", append=True)
    while (await receive())["type"] != "http.disconnect":
        pass


def _ignore_sigterm() -> None:
    """Ignore SIGTERM from now on (uvicorn installed its handler before startup)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _record_metrics_dir() -> None:
    """Record this worker's PROMETHEUS_MULTIPROC_DIR (empty when unset) and its files."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    held = sorted(p.name for p in Path(path).iterdir()) if path else []
    _record("metrics_dir", " ".join([path or "-", *held]), append=True)


healthy = _app(_ok)
crashing = _app(_unavailable, _crash_soon)
late = _app(_late, _plan_switch)
never = _app(_unavailable)
hanging = _app(_hang)
stubborn = _app(_ok, _ignore_sigterm)
counting = _app(_ok, _record_metrics_dir)
