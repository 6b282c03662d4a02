"""The app's Prometheus metrics (prometheus_client) and the text GET /metrics answers.

Labels hold only values from fixed sets (route templates, methods, status codes, engine names
and states, reasons): never a key, a prompt, a model path or a raw request path.

With several uvicorn workers (tool-only), server.sh sets PROMETHEUS_MULTIPROC_DIR before
they start: prometheus_client then keeps every value in a file per worker, and /metrics sums
the workers' files (gauges of live workers only; process_* metrics, which describe one
process, are left out in that mode, as prometheus_client does).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

# No `_created` series beside every counter and histogram: twice the text, nothing a query needs.
disable_created_metrics()

# Seconds from a request's start to the end of its answer: milliseconds for a classification,
# up to minutes for a long generation.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
                    60.0, 120.0, 300.0, 600.0)
# Seconds to a stream's first byte: the gateway's own cost is a millisecond or two; the
# engine's queue and prefill add up to tens of seconds under load.
FIRST_BYTE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                      10.0, 20.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)  # TOOL_MAX_BATCH ≤ 4096
FORWARD_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("text_inference_requests", "HTTP requests answered, by route template "
                   "(unmatched: no route), method and status (499: the client left before an "
                   "answer started; 500: the app failed)", ("route", "method", "status"))
REQUEST_SECONDS = Histogram("text_inference_request_duration_seconds", "Seconds from a "
                            "request's head to the end of its answer", ("route", "method"),
                            buckets=DURATION_BUCKETS)
STREAM_FIRST_BYTE = Histogram("text_inference_stream_first_byte_seconds", "Seconds from a "
                              "streamed request's head to the first byte of its event stream",
                              ("route",), buckets=FIRST_BYTE_BUCKETS)
STREAM_SECONDS = Histogram("text_inference_stream_duration_seconds", "Seconds from a streamed "
                           "request's head to the end of its event stream", ("route",),
                           buckets=DURATION_BUCKETS)
STREAMS = Counter("text_inference_streams", "Event streams by how they ended: completed, "
                  "error_event (the engine broke or the server shut down) or cut (the client "
                  "left, or the connection ended first)", ("route", "outcome"))
IN_FLIGHT = Gauge("text_inference_requests_in_flight", "/v1 requests in flight (the bound "
                  "MAX_CONCURRENT_CONNECTIONS applies to)", multiprocess_mode="livesum")
IN_FLIGHT_LIMIT = Gauge("text_inference_requests_in_flight_limit", "MAX_CONCURRENT_CONNECTIONS "
                        "(summed over workers)", multiprocess_mode="livesum")
REJECTED = Counter("text_inference_requests_rejected", "/v1 requests refused with 429: "
                   "MAX_CONCURRENT_CONNECTIONS were in flight")
ENGINE_STATE = Gauge("text_inference_engine_state", "1 for the state each deployed engine is "
                     "in, 0 for the others (with several workers: how many are in it)",
                     ("engine", "state"), multiprocess_mode="livesum")
CHAT_ENGINE_EXITS = Counter("text_inference_chat_engine_exits", "Chat engine ends that end the "
                            "app (it exits and the container restarts): exited, hung, "
                            "generation_check, not_started", ("reason",))
CHAT_ENGINE_HEALTH_FAILURES = Counter("text_inference_chat_engine_health_failures",
                                      "Failed health checks of the chat engine once ready")
TOOL_BATCH = Histogram("text_inference_tool_batch_size", "Texts per forward pass of the tool "
                       "model", buckets=BATCH_BUCKETS)
TOOL_FORWARD_SECONDS = Histogram("text_inference_tool_inference_seconds", "Seconds per forward "
                                 "pass of the tool model", buckets=FORWARD_BUCKETS)

# Families an engine's own exposition shares with ours (its process and Python runtime, which
# prometheus_client also reports for the app): left out of the engine's part of /metrics.
_OURS = (b"process_", b"python_")
_LIVE_GAUGE = re.compile(r"gauge_live[a-z]*_([0-9]+)\.db")


def set_engine_state(engine: str, state: str, states: tuple[str, ...]) -> None:
    """Mark the state an engine is in (1) and every other state (0)."""
    for name in states:
        ENGINE_STATE.labels(engine, name).set(1 if name == state else 0)


def exposition(multiproc_dir: str | None) -> bytes:
    """The app's metrics in Prometheus text format (every worker's, with a multiproc dir)."""
    if not multiproc_dir:
        return generate_latest(REGISTRY)
    _forget_dead_workers(multiproc_dir)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, multiproc_dir)
    return generate_latest(registry)


def _forget_dead_workers(multiproc_dir: str) -> None:
    """Drop the live gauges of workers that are gone (uvicorn replaces a worker that dies)."""
    pids = {int(m.group(1)) for p in Path(multiproc_dir).iterdir()
            if (m := _LIVE_GAUGE.fullmatch(p.name))}
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, multiproc_dir)
        except PermissionError:  # alive, another user's
            continue


def engine_part(text: bytes) -> bytes:
    """An engine's exposition without the families the app reports itself (process_*,
    python_*); every other line as it came, so its metric names stay the engine's own."""
    kept = []
    for line in text.splitlines(keepends=True):
        name = line.split(b" ", 3)[2] if line.startswith(b"# ") and line.count(b" ") >= 2 \
            else line
        if not name.startswith(_OURS):
            kept.append(line)
    out = b"".join(kept)
    return out if not out or out.endswith(b"\n") else out + b"\n"

