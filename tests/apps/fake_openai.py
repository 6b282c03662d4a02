"""A small OpenAI-compatible streaming server for tests and benchmarks (a stand-in chat engine).

Usage: python3 tests/apps/fake_openai.py [--port N] [--chunks N] [--delay S] [--crash-mid-stream N]
         [--ready-after S] [--crash-after S] [--hang-health-after S] [--answer-after S]
         [--generation-error MESSAGE]
GET /stats reports streams started / completed / cancelled, the last requests (path, body and
X-Request-Id), its pid and whether secrets reached it. GET /metrics serves Prometheus metrics
named as vLLM names its own (vllm:request_success_total, vllm:num_requests_running) beside the
process and Python metrics prometheus_client reports for any process.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import threading
import time
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

SECRETS = ("TEXT_API_KEY", "TEXT_API_KEY_FILE", "HF_TOKEN")
REQUESTS_KEPT = 32  # /stats lists the last requests (benchmarks send many)


def build_app(opts: argparse.Namespace) -> FastAPI:
    """The fake engine app for the given options."""
    app = FastAPI()
    born = time.monotonic()
    stats: dict[str, Any] = {"started": 0, "completed": 0, "cancelled": 0, "produced": 0}
    requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=REQUESTS_KEPT)
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    succeeded = Counter("vllm:request_success", "Finished requests (vLLM's name)",
                        ("model_name", "finished_reason"), registry=registry)
    running = Gauge("vllm:num_requests_running", "Requests running (vLLM's name)",
                    ("model_name",), registry=registry)
    running.labels("fake").set_function(
        lambda: stats["started"] - stats["completed"] - stats["cancelled"])

    @app.get("/health")
    async def health() -> JSONResponse:
        age = time.monotonic() - born
        if opts.hang_health_after is not None and age >= opts.hang_health_after:
            await asyncio.sleep(3600)
        return JSONResponse({}, status_code=200 if age >= opts.ready_after else 503)

    @app.get("/stats")
    async def get_stats() -> dict[str, Any]:
        secret = sorted(k for k in SECRETS if k in os.environ)
        return {**stats, "requests": list(requests), "pid": os.getpid(), "secret_env": secret}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "fake"}]}

    async def answer(request: Request, kind: str) -> Any:
        body = await request.json()
        requests.append({"path": request.url.path, "body": body,
                         "request_id": request.headers.get("x-request-id")})
        if opts.generation_error is not None:
            # /health says 200 but every generation fails, in vLLM's error shape
            error = {"message": opts.generation_error, "type": "InternalServerError",
                     "param": None, "code": 500}
            return JSONResponse({"error": error}, status_code=500)
        model = body.get("model", "fake")
        if not body.get("stream"):
            # The whole answer after --answer-after seconds; a client leaving before that is
            # counted as cancelled.
            stats["started"] += 1
            deadline = time.monotonic() + opts.answer_after
            while time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                if await request.is_disconnected():
                    stats["cancelled"] += 1
                    return JSONResponse({}, status_code=499)
            stats["completed"] += 1
            succeeded.labels("fake", "stop").inc()
            text = " ".join(f"tok{i}" for i in range(opts.chunks))
            choice = {"index": 0, "finish_reason": "stop"}
            choice.update({"message": {"role": "assistant", "content": text}} if kind == "chat"
                          else {"text": text})
            return {"id": "fake-1", "object": kind, "model": model, "choices": [choice]}

        async def events() -> Any:
            stats["started"] += 1
            try:
                for i in range(opts.chunks):
                    if i and opts.delay:
                        await asyncio.sleep(opts.delay)
                    delta = ({"delta": {"content": f"tok{i} "}} if kind == "chat"
                             else {"text": f"tok{i} "})
                    chunk = {"id": "fake-1", "model": model, "created": time.time(),
                             "choices": [{"index": 0, **delta}]}
                    stats["produced"] += 1
                    yield f"data: {json.dumps(chunk)}\n\n"
                    if stats["produced"] == opts.crash_mid_stream:
                        print("fake engine: simulated crash in the middle of a stream", flush=True)
                        os._exit(3)
                yield "data: [DONE]\n\n"
                stats["completed"] += 1
                succeeded.labels("fake", "stop").inc()
            except (asyncio.CancelledError, GeneratorExit):
                stats["cancelled"] += 1
                raise

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        return await answer(request, "chat")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        return await answer(request, "text_completion")

    return app


def main() -> None:
    """Parse options, arm the crash timer, serve on 127.0.0.1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("CHAT_ENGINE_PORT", "8001")))
    parser.add_argument("--chunks", type=int, default=5)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--crash-mid-stream", type=int, default=None,
                        help="exit 3 right after the Nth chunk this engine sends")
    parser.add_argument("--ready-after", type=float, default=0.0)
    parser.add_argument("--crash-after", type=float, default=None)
    parser.add_argument("--hang-health-after", type=float, default=None)
    parser.add_argument("--answer-after", type=float, default=0.0)
    parser.add_argument("--generation-error", default=None)
    opts = parser.parse_args()
    if opts.crash_after is not None:
        def crash() -> None:
            print("fake engine: simulated crash", flush=True)
            os._exit(3)
        threading.Timer(opts.crash_after, crash).start()
    uvicorn.run(build_app(opts), host="127.0.0.1", port=opts.port, log_level="warning")


if __name__ == "__main__":
    main()
