"""The chat engine: an OpenAI-compatible server run as a supervised child process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import os
import shlex
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from typing import Any

import anyio
import httpx
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse
from starlette.types import Message

from src import metrics
from src.config.settings import SECRET_VARS, Settings
from src.errors import ApiError, error_response, sse_error_event
from src.health import EngineState

log = logging.getLogger("src.engines.chat")
# The child's own lines, as they are: "[chat-engine] <line>", or with LOG_FORMAT=json the line as
# msg with source chat-engine (src/runtime.py's setup_logging sends `src` to stderr).
output = logging.LoggerAdapter(logging.getLogger("src.engines.chat.output"),
                               {"prefix": "[chat-engine]", "mark": "", "source": "chat-engine"})

# The child needs no key, nor where the keys are, nor the app's metrics directory (vLLM, which
# uses prometheus_client too, would write its values there and /metrics would add them up).
CHILD_DROPS = frozenset((*SECRET_VARS, "TEXT_API_KEY_FILE", "PROMETHEUS_MULTIPROC_DIR"))
HEALTH_PATH = "/health"
# Where each engine serves its own Prometheus metrics (trtllm-serve: where it has them).
METRICS_PATHS = {"vllm": "/metrics", "trt": "/prometheus/metrics"}
# The start-up generation check: a completion (no chat template needed) of one token, a route
# `vllm serve`, `trtllm-serve` and any engine this app proxies to all serve.
GENERATION_CHECK_PATH = "/v1/completions"
GENERATION_CHECK_PROMPT = "Hello"
MESSAGE_CHARS = 500  # the most of an engine's error body a log line quotes
TAIL_LINES = 20
POOLS = 16  # connection pools of the proxy (see ChatEngine.__init__)
PROXY_TIMEOUT = httpx.Timeout(None, connect=5.0).as_dict()  # streams may pause for long


def build_engine_argv(s: Settings) -> list[str]:
    """The chat engine's command line: CHAT_ENGINE_CMD, else `vllm serve` or `trtllm-serve`."""
    if s.chat_engine_cmd:
        return list(s.chat_engine_cmd)
    bind = ["--host", "127.0.0.1", "--port", str(s.chat_engine_port)]
    if s.engine == "vllm":
        argv = ["vllm", "serve", s.chat_model_path, *bind]
        argv += ["--served-model-name", s.served_model_name]
        argv += ["--tensor-parallel-size", str(s.tensor_parallel_size)]
        options = {
            "--gpu-memory-utilization": s.chat_gpu_frac,
            "--kv-cache-memory-bytes": s.chat_kv_cache_bytes,
            "--dtype": s.chat_dtype,
            "--max-model-len": s.chat_max_len,
            "--quantization": s.chat_quantization,
            "--kv-cache-dtype": s.kv_dtype,
            # vLLM >= 0.13 ignores the VLLM_ATTENTION_BACKEND variable; the flag is the way.
            "--attention-config.backend": s.chat_attention_backend,
            "--max-num-seqs": s.max_num_seqs,
            "--max-num-batched-tokens": s.max_num_batched_tokens,
        }
    else:
        # A pre-built engine: quantization and KV cache dtype are baked into it at build time.
        argv = ["trtllm-serve", s.trt_engine_dir, "--backend", "tensorrt", *bind]
        argv += ["--tokenizer", s.chat_model_path, "--served_model_name", s.served_model_name]
        argv += ["--tp_size", str(s.tensor_parallel_size)]
        options = {
            "--kv_cache_free_gpu_memory_fraction": s.trt_kv_free_gpu_frac,
            "--max_seq_len": s.chat_max_len,
            "--max_batch_size": s.max_num_seqs,
            "--max_num_tokens": s.max_num_batched_tokens,
        }
    for flag, value in options.items():
        if value is not None:
            argv += [flag, str(value)]
    if s.engine == "vllm" and s.chat_enforce_eager:
        argv.append("--enforce-eager")
    return argv


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment for the child: ours without the secrets it has no use for."""
    return {k: v for k, v in env.items() if k not in CHILD_DROPS}


class ChatEngine:
    """Starts, watches, proxies to and stops the chat engine child process."""

    def __init__(
        self,
        settings: Settings,
        set_state: Callable[[EngineState], None],
        on_exit: Callable[[int], None],
    ) -> None:
        """Remember the settings and the callbacks for state changes and an unexpected exit."""
        self.settings = settings
        self.set_state = set_state
        self.on_exit = on_exit
        self.base_url = f"http://127.0.0.1:{settings.chat_engine_port}"
        self.proc: asyncio.subprocess.Process | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        # POOLS connection pools, taken in turn: httpcore's pool walks all its connections for
        # each idle one when a request starts or ends (O(n²): at 128 streams through one pool,
        # 13 ms of CPU per request; 3 ms through 16). The proxy sends on a transport itself (no
        # per-request URL merging, auth, redirect or cookie handling: about a quarter of its
        # cost per request); the health checks go through a client on the first pool.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        self.transports = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(POOLS)]
        self._turn = itertools.count()
        self.client = httpx.AsyncClient(base_url=self.base_url, transport=self.transports[0],
                                        timeout=httpx.Timeout(None, connect=5.0))
        self._urls: dict[str, httpx.URL] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        """Spawn the child in its own process group and start watching it."""
        argv = build_engine_argv(self.settings)
        log.info("starting chat engine: %s", shlex.join(argv))
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, env=child_env(os.environ), start_new_session=True,
            )
        except OSError as exc:
            self.set_state(EngineState.FAILED)
            log.error("chat engine %r cannot start: %s", argv[0], exc.strerror)
            metrics.CHAT_ENGINE_EXITS.labels("not_started").inc()
            self.on_exit(127)
            return
        self._tasks = [
            asyncio.create_task(self._pump_output(), name="chat-output"),
            asyncio.create_task(self._watch_health(), name="chat-health"),
            asyncio.create_task(self._watch_exit(), name="chat-exit"),
        ]

    async def _pump_output(self) -> None:
        """Copy the child's output to our stderr, keeping the last lines for a crash report."""
        if self.proc is None or self.proc.stdout is None:
            return
        async for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            self.tail.append(line)
            output.info("%s", line)

    async def _healthy(self) -> bool:
        """True when the child's health endpoint answers 200 within the time limit."""
        try:
            resp = await self.client.get(HEALTH_PATH, timeout=self.settings.chat_health_timeout_s)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    async def _generation_problem(self) -> str | None:
        """Why the engine failed to generate one token within the time limit; None when it did."""
        limit = self.settings.chat_generation_check_timeout_s
        body = {"model": self.settings.served_model_name, "prompt": GENERATION_CHECK_PROMPT,
                "max_tokens": 1}
        try:
            resp = await asyncio.wait_for(self.client.post(GENERATION_CHECK_PATH, json=body), limit)
        except asyncio.TimeoutError:
            return f"no answer within CHAT_GENERATION_CHECK_TIMEOUT_S={limit}s"
        except httpx.HTTPError as exc:
            return f"no answer ({type(exc).__name__})"
        with contextlib.suppress(ValueError, AttributeError):
            if resp.status_code == 200 and resp.json().get("choices"):
                return None
        text = " ".join(resp.text.split())
        if len(text) > MESSAGE_CHARS:
            text = text[:MESSAGE_CHARS] + "…"
        return f"HTTP {resp.status_code}: {text or '(empty body)'}"

    async def _passes_generation_check(self) -> bool:
        """The start-up gate: True when one token was generated (or the check is off); else
        the engine is marked failed and the app told to exit with status 1."""
        if not self.settings.chat_generation_check:
            return True
        log.info("chat engine answers %s; checking that it generates (POST %s, max_tokens 1)",
                 HEALTH_PATH, GENERATION_CHECK_PATH)
        problem = await self._generation_problem()
        if problem is None:
            return True
        if self._stopping:  # the app is shutting down anyway: nothing to report
            return False
        self.set_state(EngineState.FAILED)
        log.error("chat engine answers %s but failed its generation check (POST %s, max_tokens "
                  "1): %s", HEALTH_PATH, GENERATION_CHECK_PATH, problem)
        metrics.CHAT_ENGINE_EXITS.labels("generation_check").inc()
        self.on_exit(1)
        return False

    async def _watch_health(self) -> None:
        """Poll fast while loading, then every CHAT_HEALTH_INTERVAL_S; report ready or failed.

        Ready needs a 200 from /health and then, once (the start-up gate, never re-run), the
        generation check. Once ready, CHAT_HEALTH_FAILURES failed checks in a row (a hung
        engine) end the app with status 1, so that the container is restarted; 0 never does.
        """
        ready_once, failures, limit = False, 0, self.settings.chat_health_failures
        while True:
            ok = await self._healthy()
            if self._stopping:
                return
            if ok:
                if not ready_once:
                    if not await self._passes_generation_check() or self._stopping:
                        return
                    log.info("chat engine ready")
                ready_once, failures = True, 0
                self.set_state(EngineState.READY)
            elif ready_once:
                failures += 1
                metrics.CHAT_ENGINE_HEALTH_FAILURES.inc()
                log.warning("chat engine health check failed (no 200 within %ss; %d in a row)",
                            self.settings.chat_health_timeout_s, failures)
                self.set_state(EngineState.FAILED)
                if failures == limit:
                    log.error("chat engine failed %d health checks in a row "
                              "(CHAT_HEALTH_FAILURES=%d): it is hung", failures, limit)
                    metrics.CHAT_ENGINE_EXITS.labels("hung").inc()
                    self.on_exit(1)
                    return
            interval = self.settings.chat_health_interval_s
            await asyncio.sleep(interval if ready_once else min(interval, 0.5))

    async def _watch_exit(self) -> None:
        """When the child exits on its own: mark failed, log status and last lines, report."""
        if self.proc is None:
            return
        code = await self.proc.wait()
        if self._stopping:
            return
        self.set_state(EngineState.FAILED)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._tasks[0]), 1.0)
        tail = "\n".join(self.tail) or "(no output)"
        log.error("chat engine exited with status %s; last output lines:\n%s", code, tail)
        metrics.CHAT_ENGINE_EXITS.labels("exited").inc()
        self.on_exit(code if code > 0 else 1)

    async def stop(self) -> None:
        """Terminate the child's process group: SIGTERM, then SIGKILL after ENGINE_STOP_TIMEOUT."""
        self._stopping = True
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self.settings.engine_stop_timeout)
            except asyncio.TimeoutError:
                log.warning("chat engine ignored SIGTERM for %ss; killing it",
                            self.settings.engine_stop_timeout)
        if proc is not None:
            # The group may outlive its leader (engine workers): kill whatever is left.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.aclose()
        for transport in self.transports[1:]:
            await transport.aclose()

    async def own_metrics(self) -> bytes | None:
        """The engine's own Prometheus metrics (METRICS_PATHS); None when it gives no 200 within
        CHAT_HEALTH_TIMEOUT_S."""
        try:
            resp = await self.client.get(METRICS_PATHS[self.settings.engine],
                                         timeout=self.settings.chat_health_timeout_s)
        except httpx.HTTPError:
            return None
        return resp.content if resp.status_code == 200 else None

    async def proxy(self, path: str, body: bytes, stream: bool,
                    receive: Callable[[], Awaitable[Message]], request_id: str) -> Response:
        """Forward a POST to the engine with the request's id (X-Request-Id, which vLLM takes
        as its own request id): server-sent events go through as they arrive.

        A stream=true answer starts at once and _relay passes a disconnect on. Any other answer
        comes whole, after the engine has generated it all: it is awaited against the client's
        receive (whose next message after the body is the disconnect), so a client that leaves
        cancels the upstream request there too.
        """
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self.base_url + path)
        headers = {"content-type": "application/json", "x-request-id": request_id}
        request = httpx.Request("POST", url, content=body, headers=headers,
                                extensions={"timeout": PROXY_TIMEOUT})
        if stream:
            return await self._respond(request)
        return await _unless_gone(self._respond(request), receive)

    async def _respond(self, request: httpx.Request) -> Response:
        """Send the request; relay an event stream, or read a whole answer."""
        transport = self.transports[next(self._turn) % POOLS]
        upstream = await transport.handle_async_request(request)
        media = upstream.headers.get("content-type", "application/json")
        if not media.startswith("text/event-stream"):
            try:
                content = await upstream.aread()
            finally:
                with anyio.CancelScope(shield=True):
                    await upstream.aclose()
            return Response(content, status_code=upstream.status_code, media_type=media)
        return StreamingResponse(
            _relay(upstream), status_code=upstream.status_code, media_type=media,
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
            background=BackgroundTask(upstream.aclose),
        )


async def _unless_gone(work: Coroutine[Any, Any, Response],
                       receive: Callable[[], Awaitable[Message]]) -> Response:
    """work's response; when the client disconnects first, work is cancelled (499, unsent)."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(receive))
    finished = False
    try:
        await asyncio.wait((task, gone), return_when=asyncio.FIRST_COMPLETED)
        finished = task.done()
    finally:
        gone.cancel()
        if not finished:
            task.cancel()  # closes the upstream connection: the engine sees the disconnect
    if finished:
        return task.result()
    log.info("client disconnected; the chat engine request is cancelled")
    return error_response(ApiError(499, "the client closed the request", "client_closed_request"))


async def _disconnected(receive: Callable[[], Awaitable[Message]]) -> None:
    """Return when the client disconnects."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
    """Yield upstream bytes as they come; close upstream when the client goes (cancellation).

    When the engine's stream breaks, the client gets an error event instead of an end that
    would look complete.
    """
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.HTTPError as exc:
        log.warning("chat engine stream broke (%s): the client got an error event",
                    type(exc).__name__)
        yield sse_error_event(ApiError(502, "the chat engine stopped in the middle of this "
                                       "stream; the answer is incomplete", "engine_unavailable"))
    finally:
        with anyio.CancelScope(shield=True):
            await upstream.aclose()
