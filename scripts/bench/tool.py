"""Tool engine throughput: requests per second at concurrency 1 and 32 on the tiny model.

Usage: PYTHONPATH=. python3 scripts/bench/tool.py [--requests 256]
Builds the tiny classifier (scripts/lib/tiny_model.py) in a temporary directory, starts the app
(DEPLOY_MODE=tool) under uvicorn, posts single-text /v1/classify requests and prints the rates
and their ratio (batching should make concurrency 32 at least 3x faster). Not part of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from gateway import ROOT, free_port, wait_ready  # a sibling script: its directory is on sys.path

KEY = "bench-key"


async def rate(url: str, requests: int, concurrency: int) -> float:
    """Requests per second for `requests` classify calls at the given concurrency."""
    limit = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=None)) as client:
        async def job(i: int) -> None:
            async with limit:
                body = {"input": f"the movie number {i} was very good"}
                resp = await client.post(url, json=body, headers=headers)
                resp.raise_for_status()
        await asyncio.gather(*(job(i) for i in range(8)))  # warm-up
        start = time.perf_counter()
        await asyncio.gather(*(job(i) for i in range(requests)))
        return requests / (time.perf_counter() - start)


def main() -> int:
    """Make the model, start the app, measure, print, stop."""
    parser = argparse.ArgumentParser(description="Tool engine throughput benchmark")
    parser.add_argument("--requests", type=int, default=256)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "scripts" / "lib"))
    from tiny_model import make_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model = make_tiny_model(Path(tmp) / "model", ("negative", "neutral", "positive"))
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TEXT_API_KEY": KEY, "DEPLOY_MODE": "tool",
               "TOOL_MODEL_PATH": str(model), "TOOL_MAX_BATCH": "32",
               "MAX_CONCURRENT_CONNECTIONS": "1000"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "src.server:app", "--host", "127.0.0.1", "--port",
             str(port), "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env, start_new_session=True, stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}")
            url = f"http://127.0.0.1:{port}/v1/classify"
            rates = {c: asyncio.run(rate(url, args.requests, c)) for c in (1, 32)}
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    print(f"{args.requests} single-text requests on the tiny model (CPU)")
    for c, r in rates.items():
        print(f"concurrency {c:2}: {r:8.1f} requests/s")
    print(f"ratio 32 / 1: {rates[32] / rates[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
