"""src.server:app with a heartbeat: `uvicorn tests.apps.heartbeat:app` for tests of loop stalls.

A task wakes every TICK_S seconds and keeps the longest delay past its wake-up time: how long
the event loop was held. The time the loop's thread spent ready but waiting for a CPU (Linux's
run delay in /proc/thread-self/schedstat: other processes of a busy machine ran) is taken
off, so what is left is the app's own doing: work on the loop, or the GIL held elsewhere.
GET /_heartbeat answers {"longest_block_ms": N, "longest_late_ms": M (run delay included)}
and starts over; everything else is the app's.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from src.server import app_from_env

TICK_S = 0.005

_inner = app_from_env()
_longest = {"block": 0.0, "late": 0.0}
_tasks: set[asyncio.Task[None]] = set()


def _run_delay_s() -> float:
    """Seconds this thread has waited for a CPU while ready to run, since it began."""
    with open("/proc/thread-self/schedstat") as stat:
        return int(stat.read().split()[1]) / 1e9


async def _beat() -> None:
    """Forever: sleep TICK_S, record how late the wake-up came, with and without run delay."""
    loop = asyncio.get_running_loop()
    while True:
        due, delay = loop.time() + TICK_S, _run_delay_s()
        await asyncio.sleep(TICK_S)
        late = loop.time() - due
        _longest["late"] = max(_longest["late"], late)
        _longest["block"] = max(_longest["block"], late - (_run_delay_s() - delay))


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The app, plus the heartbeat task (started with the lifespan) and GET /_heartbeat."""
    if scope["type"] == "lifespan" and not _tasks:
        task = asyncio.get_running_loop().create_task(_beat())
        _tasks.add(task)
    if scope["type"] == "http" and scope["path"] == "/_heartbeat":
        await asyncio.sleep(3 * TICK_S)  # a beat late behind a block records it first
        body = json.dumps({f"longest_{k}_ms": v * 1000 for k, v in _longest.items()}).encode()
        _longest.update(block=0.0, late=0.0)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
        return
    await _inner(scope, receive, send)
