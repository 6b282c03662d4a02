"""Gateway overhead: the fake streaming engine measured directly and through src.server:app.

Usage: PYTHONPATH=. python3 scripts/bench/gateway.py [--requests 200] [--concurrency 16]
Starts the app (DEPLOY_MODE=chat, tests/apps/fake_openai.py as CHAT_ENGINE_CMD) on free ports,
runs the same streaming requests directly and through the app, interleaved, and prints the median
time to first chunk (TTFC), chunks per second and the ratios. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rawhttp import BenchHTTPError, Target  # a sibling module: its directory is on sys.path

ROOT = Path(__file__).resolve().parents[2]
KEY = "bench-key"
BODY = {"messages": [{"role": "user", "content": "hi"}], "stream": True}


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def one(target: Target) -> tuple[float, float]:
    """One streaming request: (seconds to first chunk, chunks per second after it)."""
    res = await target.post()
    if res.status != 200 or res.events < 2:
        raise BenchHTTPError(f"status {res.status} with {res.events} event(s) from {target.port}")
    return res.first_s, (res.events - 1) / max(res.total_s - res.first_s, 1e-9)


async def run(direct: str, gateway: str, requests: int, concurrency: int) -> dict[str, list]:
    """Interleave direct and gateway requests at the given concurrency (one client for both)."""
    body = json.dumps(BODY).encode()
    targets = {"direct": Target(direct, body),
               "gateway": Target(gateway, body, {"Authorization": f"Bearer {KEY}"})}
    results: dict[str, list] = {"direct": [], "gateway": []}
    jobs = ["direct", "gateway"] * requests
    limit = asyncio.Semaphore(concurrency)

    async def job(name: str) -> None:
        async with limit:
            results[name].append(await one(targets[name]))

    try:
        await asyncio.gather(*(job(name) for name in ["direct", "gateway"] * concurrency))  # warm-up
        for kept in results.values():
            kept.clear()
        await asyncio.gather(*(job(name) for name in jobs))
    finally:
        for target in targets.values():
            await target.close()
    return results


def wait_ready(url: str, timeout: float = 60) -> None:
    """Poll /healthz until 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(0.1)
    raise SystemExit(f"gateway.py: the app at {url} was not ready within {timeout}s")


def main() -> int:
    """Start the app, measure, print the table and ratios, stop the app."""
    parser = argparse.ArgumentParser(description="Gateway overhead benchmark")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.01)
    args = parser.parse_args()
    port, engine_port = free_port(), free_port()
    engine_cmd = (f"{sys.executable} {ROOT / 'tests/apps/fake_openai.py'} --port {engine_port} "
                  f"--chunks {args.chunks} --delay {args.delay}")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TEXT_API_KEY": KEY, "DEPLOY_MODE": "chat",
           "CHAT_ENGINE_PORT": str(engine_port), "CHAT_ENGINE_CMD": engine_cmd,
           "MAX_CONCURRENT_CONNECTIONS": "1000", "PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "src.server:app", "--host", "127.0.0.1", "--port",
         str(port), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=env, start_new_session=True, stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}")
        results = asyncio.run(run(f"http://127.0.0.1:{engine_port}/v1/chat/completions",
                                  f"http://127.0.0.1:{port}/v1/chat/completions",
                                  args.requests, args.concurrency))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    ttfc = {k: statistics.median(r[0] for r in v) * 1000 for k, v in results.items()}
    rate = {k: statistics.median(r[1] for r in v) for k, v in results.items()}
    print(f"{args.requests} requests each, concurrency {args.concurrency}, {args.chunks} chunks, "
          f"{args.delay * 1000:.0f} ms apart")
    for name in ("direct", "gateway"):
        print(f"{name:8} TTFC median {ttfc[name]:7.2f} ms   chunks/s median {rate[name]:8.1f}")
    print(f"TTFC overhead {ttfc['gateway'] - ttfc['direct']:+.2f} ms; "
          f"throughput ratio {rate['gateway'] / rate['direct']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
