"""Gateway overhead: the fake streaming engine measured directly and through src.server:app.

Usage: PYTHONPATH=. python3 scripts/bench/gateway.py [--requests 200] [--concurrency 16 ...]
         [--chunks 20] [--delay 0.01]
Starts the app as the images do (uvicorn with server.sh's options; DEPLOY_MODE=chat,
tests/apps/fake_openai.py as CHAT_ENGINE_CMD) on free ports, sends the same streaming requests
directly and through the app, interleaved, with one lean client (rawhttp.py), and prints, for
each concurrency level in turn (streams in flight on each side), the median and p95 time to
first chunk (TTFC), chunks per second and the ratios, and the app's CPU time (user + system,
read from /proc/<pid>/stat before and after the level) per proxied request and per relayed
chunk: a cost that the other work of a shared machine does not inflate as it does latencies.
Each level sends max(--requests, 2 x its concurrency) requests per side.
--gateway-workers 1 2 [--rounds R] starts the app with each GATEWAY_WORKERS in turn (R rounds,
alternating), each with its own fake engine, and reports every level for each; the app's CPU
time is then that of all its processes (the supervisor, uvicorn's manager and its workers; not
the engine).
With --app URL --engine URL --model NAME it starts nothing and measures a running container
instead (a real engine: scripts/bench/vllm_cpu.sh), the key from TEXT_API_KEY, each request
asking for --max-tokens tokens; --app-pid PID (the container's uvicorn as the host sees it)
adds its CPU time. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from rawhttp import BenchHTTPError, Target  # a sibling module: its directory is on sys.path

ROOT = Path(__file__).resolve().parents[2]
SERVER_SH = ROOT / "docker/common/scripts/server.sh"
KEY = "bench-key"
BODY = {"messages": [{"role": "user", "content": "hi"}], "stream": True}


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Outcome = tuple[float, float, int]  # seconds to first chunk, chunks/s after it, chunks


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time so far of a process and of its live descendants in its session
    (uvicorn's manager and workers; not the chat engine, which runs in a session of its own);
    0 without."""
    if pid is None:
        return 0.0
    stats = {}  # pid: the fields of /proc/<pid>/stat after the command (state, ppid, pgrp, sid…)
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit():
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
    session = stats[pid][3]
    family = {pid}
    for _ in range(3):  # the supervisor's children, and theirs
        family |= {p for p, fields in stats.items()
                   if int(fields[1]) in family and fields[3] == session}
    ticks = sum(int(stats[p][11]) + int(stats[p][12]) for p in family)
    return ticks / os.sysconf("SC_CLK_TCK")


async def one(target: Target, whole: bool = False) -> Outcome:
    """One streaming request: (seconds to first chunk, chunks per second after it, chunks).

    whole: chunks per second over the whole request instead (a real engine sends its chunks in
    bursts that one read can hold, so the time after the first one says little).
    """
    res = await target.post()
    if res.status != 200 or res.events < 2:
        raise BenchHTTPError(f"status {res.status} with {res.events} event(s) from {target.port}")
    if whole:
        return res.first_s, res.events / res.total_s, res.events
    return res.first_s, (res.events - 1) / max(res.total_s - res.first_s, 1e-9), res.events


async def run(direct: str, gateway: str, requests: int, concurrency: int, body: bytes,
              key: str, app_pid: int | None, whole: bool = False) -> tuple[dict[str, list], float]:
    """Interleave direct and gateway requests at the given concurrency (one client for both);
    the outcomes of each side and the app's CPU seconds over the measured part."""
    targets = {"direct": Target(direct, body),
               "gateway": Target(gateway, body, {"Authorization": f"Bearer {key}"})}
    results: dict[str, list] = {"direct": [], "gateway": []}
    jobs = ["direct", "gateway"] * requests
    limit = asyncio.Semaphore(concurrency)

    async def job(name: str) -> None:
        async with limit:
            results[name].append(await one(targets[name], whole))

    try:
        # Warm-up: open the connections, let both servers reach a steady state.
        await asyncio.gather(*(job(name) for name in ["direct", "gateway"] * concurrency))
        for kept in results.values():
            kept.clear()
        cpu = cpu_seconds(app_pid)
        await asyncio.gather(*(job(name) for name in jobs))
        cpu = cpu_seconds(app_pid) - cpu
    finally:
        for target in targets.values():
            await target.close()
    return results, cpu


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
    raise SystemExit(f"bench: the app at {url} was not ready within {timeout}s")


@contextlib.contextmanager
def running_app(env: dict[str, str], gateway_workers: int = 1) -> Iterator[tuple[str, int]]:
    """Run the app with uvicorn's options from server.sh (resolve_uvicorn_cmd); yield its URL
    and the pid of its process (one worker: uvicorn serves in it; several: the supervisor)."""
    port = free_port()
    metrics_dir = tempfile.mkdtemp(prefix="bench-metrics.")
    env = {**os.environ, **env, "PYTHONPATH": str(ROOT), "APP_ROOT": str(ROOT),
           "HOST": "127.0.0.1", "PORT": str(port), "SERVER_APP": "src.server:app",
           "UVICORN_WORKERS": "1", "GATEWAY_WORKERS": str(gateway_workers),
           **({"PROMETHEUS_MULTIPROC_DIR": metrics_dir} if gateway_workers > 1 else {}),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    script = 'source "$1" && resolve_uvicorn_cmd "$2" && printf "%s\\0" "${UVICORN_CMD[@]}"'
    found = subprocess.run(["bash", "-c", script, "bench", str(SERVER_SH), str(ROOT)], env=env,
                           capture_output=True, timeout=120, check=False)
    if found.returncode != 0:
        raise SystemExit(f"bench: server.sh found no uvicorn command: {found.stderr.decode()}")
    argv = found.stdout.decode().split("\0")[:-1]
    print(f"app: {shlex.join(argv)}", flush=True)
    # The app's output, its access log included, goes into a pipe that another process reads,
    # as in a container (where Docker reads it): here grep, counting the access lines.
    read_end, write_end = os.pipe()
    counter = subprocess.Popen(["grep", "-c", '"POST /v1/chat/completions '], stdin=read_end,
                               stdout=subprocess.PIPE)
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True, stdout=write_end,
                            stderr=subprocess.STDOUT)
    os.close(read_end)
    os.close(write_end)  # the app holds the only write end now: grep ends when the app does
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        yield url, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(metrics_dir)
        lines = counter.communicate(timeout=30)[0].decode().strip()
        print(f"app: {lines} access log lines for /v1/chat/completions", flush=True)


def report(results: dict[str, list], cpu: float | None, title: str) -> None:
    """Print median and p95 TTFC, median chunks/s per side, the overhead and ratio, and the
    app's CPU time per proxied request and per relayed chunk (cpu: None when unknown)."""
    ttfc = {k: [r[0] * 1000 for r in v] for k, v in results.items()}
    rate = {k: statistics.median(r[1] for r in v) for k, v in results.items()}
    med = {k: statistics.median(v) for k, v in ttfc.items()}
    p95 = {k: statistics.quantiles(v, n=20)[-1] for k, v in ttfc.items()}
    print(title)
    for name in ("direct", "gateway"):
        print(f"{name:8} TTFC median {med[name]:7.2f} ms  p95 {p95[name]:7.2f} ms   "
              f"chunks/s median {rate[name]:8.1f}")
    print(f"TTFC overhead median {med['gateway'] - med['direct']:+.2f} ms, "
          f"p95 {p95['gateway'] - p95['direct']:+.2f} ms; "
          f"throughput ratio {rate['gateway'] / rate['direct']:.3f}", flush=True)
    if cpu is not None:
        requests = len(results["gateway"])
        chunks = sum(r[2] for r in results["gateway"])
        print(f"app CPU {cpu:.2f} s: {cpu / requests * 1000:.3f} ms per request, "
              f"{cpu / chunks * 1e6:.1f} us per relayed chunk ({requests} requests, "
              f"{chunks} chunks)", flush=True)


def main() -> int:
    """Start the app (or use a running one), measure each level, print the tables and ratios."""
    parser = argparse.ArgumentParser(description="Gateway overhead benchmark")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16])
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.01)
    parser.add_argument("--app", help="a running app's base URL (with --engine, --model)")
    parser.add_argument("--engine", help="that app's chat engine base URL")
    parser.add_argument("--model", help="the served model name")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--app-pid", type=int, help="with --app: its uvicorn's pid, for CPU")
    parser.add_argument("--gateway-workers", type=int, nargs="+", default=[1],
                        help="GATEWAY_WORKERS of the app started, each in turn")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of --gateway-workers")
    args = parser.parse_args()
    if args.app:
        if not (args.engine and args.model and os.environ.get("TEXT_API_KEY")):
            parser.error("--app needs --engine, --model and the key in TEXT_API_KEY")
        body = {**BODY, "model": args.model, "max_tokens": args.max_tokens}
        measure(f"{args.engine}/v1/chat/completions", f"{args.app}/v1/chat/completions", args,
                json.dumps(body).encode(), os.environ["TEXT_API_KEY"], args.app_pid,
                f"{args.max_tokens} tokens each from {args.model} (chunks/s over the whole "
                "request)", whole=True)
        return 0
    for round_ in range(1, args.rounds + 1):
        for workers in args.gateway_workers:
            engine_port = free_port()
            engine_cmd = (f"{sys.executable} {ROOT / 'tests/apps/fake_openai.py'} --port "
                          f"{engine_port} --chunks {args.chunks} --delay {args.delay}")
            # Room for every stream of the highest level (and its warm-up) in each worker.
            limit = str(workers * max(1000, 2 * max(args.concurrency)))
            env = {"TEXT_API_KEY": KEY, "DEPLOY_MODE": "chat",
                   "CHAT_ENGINE_PORT": str(engine_port), "CHAT_ENGINE_CMD": engine_cmd,
                   "MAX_CONCURRENT_CONNECTIONS": limit}
            with running_app(env, workers) as (url, pid):
                measure(f"http://127.0.0.1:{engine_port}/v1/chat/completions",
                        f"{url}/v1/chat/completions", args, json.dumps(BODY).encode(), KEY, pid,
                        f"{args.chunks} chunks, {args.delay * 1000:.0f} ms apart, "
                        f"GATEWAY_WORKERS={workers}, round {round_}")
    return 0


def measure(direct: str, gateway: str, args: argparse.Namespace, body: bytes, key: str,
            app_pid: int | None, what: str, whole: bool = False) -> None:
    """Run and report each concurrency level in turn against the same app and engine."""
    for concurrency in args.concurrency:
        requests = max(args.requests, 2 * concurrency)
        results, cpu = asyncio.run(run(direct, gateway, requests, concurrency, body, key,
                                       app_pid, whole))
        report(results, cpu if app_pid is not None else None,
               f"{requests} requests each, concurrency {concurrency}, {what}")


if __name__ == "__main__":
    sys.exit(main())
