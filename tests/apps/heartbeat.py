"""src.server:app with a heartbeat: `uvicorn tests.apps.heartbeat:app` for tests of loop stalls.

A task wakes every TICK_S seconds and keeps the longest delay past its wake-up time: how long
the event loop was held. GET /_heartbeat answers {"longest_block_ms": N} and starts over;
everything else is the app's.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from src.server import app_from_env

TICK_S = 0.005

_inner = app_from_env()
_longest = [0.0]
_tasks: set[asyncio.Task[None]] = set()


async def _beat() -> None:
    """Forever: sleep TICK_S, record how late the wake-up came."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + TICK_S
        await asyncio.sleep(TICK_S)
        _longest[0] = max(_longest[0], loop.time() - due)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The app, plus the heartbeat task (started with the lifespan) and GET /_heartbeat."""
    if scope["type"] == "lifespan" and not _tasks:
        task = asyncio.get_running_loop().create_task(_beat())
        _tasks.add(task)
    if scope["type"] == "http" and scope["path"] == "/_heartbeat":
        await asyncio.sleep(3 * TICK_S)  # a beat late behind a block records it first
        body = json.dumps({"longest_block_ms": _longest[0] * 1000}).encode()
        _longest[0] = 0.0
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
        return
    await _inner(scope, receive, send)
