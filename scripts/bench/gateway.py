"""Gateway overhead: the fake streaming engine measured directly and through src.server:app.

Usage: PYTHONPATH=. python3 scripts/bench/gateway.py [--requests 200] [--concurrency 16]
Starts the app (DEPLOY_MODE=chat, tests/apps/fake_openai.py as CHAT_ENGINE_CMD) on free ports,
runs the same streaming requests directly and through the app, interleaved, and prints the median
time to first chunk (TTFC), chunks per second and the ratios. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
KEY = "bench-key"
BODY = {"messages": [{"role": "user", "content": "hi"}], "stream": True}


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def one(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> tuple[float, float]:
    """One streaming request: (seconds to first chunk, chunks per second after it)."""
    start = time.perf_counter()
    first, chunks = 0.0, 0
    async with client.stream("POST", url, json=BODY, headers=headers) as resp:
        async for line in resp.aiter_lines():
            if line.startswith("data:"):
                chunks += 1
                if chunks == 1:
                    first = time.perf_counter()
    end = time.perf_counter()
    return first - start, (chunks - 1) / max(end - first, 1e-9)


async def run(direct: str, gateway: str, requests: int, concurrency: int) -> dict[str, list]:
    """Interleave direct and gateway requests at the given concurrency."""
    results: dict[str, list] = {"direct": [], "gateway": []}
    targets = [("direct", direct, {}), ("gateway", gateway, {"Authorization": f"Bearer {KEY}"})]
    jobs = [targets[i % 2] for i in range(2 * requests)]
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=None)) as client:
        async def job(name: str, url: str, headers: dict[str, str]) -> None:
            async with limit:
                results[name].append(await one(client, url, headers))
        await asyncio.gather(*(job(*j) for j in jobs))
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
