"""Tool engine throughput: requests per second at concurrency 1 and 32 on the tiny model.

Usage: PYTHONPATH=. python3 scripts/bench/tool.py [--seconds 3]
Builds the tiny classifier (scripts/lib/tiny_model.py) in a temporary directory, starts the app
(DEPLOY_MODE=tool) as the images do (gateway.running_app), posts single-text /v1/classify
requests from 1 and from 32 keep-alive clients (rawhttp.py) for --seconds each, and prints the
rates and their ratio (batching should make concurrency 32 at least 3x faster). Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from gateway import ROOT, running_app  # sibling modules: their directory is on sys.path
from rawhttp import BenchHTTPError, Target

KEY = "bench-key"


async def rate(url: str, seconds: float, concurrency: int) -> tuple[float, int]:
    """Requests per second (and how many) with `concurrency` clients posting for `seconds`."""
    headers = {"Authorization": f"Bearer {KEY}"}
    targets = [Target(url, json.dumps({"input": f"the movie number {i} was very good"}).encode(),
                      headers) for i in range(concurrency)]
    done = 0

    async def worker(target: Target, until: float) -> None:
        nonlocal done
        while time.perf_counter() < until:
            res = await target.post()
            if res.status != 200 or b'"label"' not in res.body:
                raise BenchHTTPError(f"/v1/classify answered {res.status}: {res.body[:200]!r}")
            done += 1

    try:
        # Warm-up: open the connections, run the first batches.
        await asyncio.gather(*(worker(t, time.perf_counter() + 0.3) for t in targets))
        done = 0
        start = time.perf_counter()
        await asyncio.gather(*(worker(t, start + seconds) for t in targets))
        return done / (time.perf_counter() - start), done
    finally:
        for target in targets:
            await target.close()


def main() -> int:
    """Make the model, start the app, measure, print, stop."""
    parser = argparse.ArgumentParser(description="Tool engine throughput benchmark")
    parser.add_argument("--seconds", type=float, default=3.0, help="per concurrency level")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "scripts" / "lib"))
    from tiny_model import make_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model = make_tiny_model(Path(tmp) / "model", ("negative", "neutral", "positive"))
        env = {"TEXT_API_KEY": KEY, "DEPLOY_MODE": "tool", "TOOL_MODEL_PATH": str(model),
               "TOOL_MAX_BATCH": "32", "MAX_CONCURRENT_CONNECTIONS": "1000"}
        with running_app(env) as app_url:
            url = f"{app_url}/v1/classify"
            rates = {c: asyncio.run(rate(url, args.seconds, c)) for c in (1, 32)}
    print(f"single-text requests on the tiny model (CPU), {args.seconds:g} s per level")
    for c, (r, n) in rates.items():
        print(f"concurrency {c:2}: {r:8.1f} requests/s ({n} requests)")
    print(f"ratio 32 / 1: {rates[32][0] / rates[1][0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
