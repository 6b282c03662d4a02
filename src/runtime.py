"""The app's run time: start and stop engines, drain on SIGTERM, exit non-zero when one dies."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from types import FrameType
from typing import Any

from pyhelpers import log_setup, logs
from src import request_id
from src.config.settings import Settings
from src.engines.chat import ChatEngine
from src.engines.tool import ToolEngine, ToolModelError
from src.health import Board, EngineState, Health, Stop

log = logging.getLogger("src.runtime")
# Libraries that log every HTTP request they make at info (the engine's health polls).
_CHATTY_LIBRARIES = ("httpx", "httpcore")


def setup_logging() -> None:
    """Send the `src` loggers, and every library's (the root logger, Python's warnings), to
    stderr as [server] lines with logs.sh's LOG_LEVEL and LOG_FORMAT rules (pyhelpers/log_setup.py;
    uvicorn's own lines use the same, from its log config); the id of the request being served
    goes into the lines logged while serving it, uvicorn's access lines included. httpx logs
    each request at info, the chat engine's /health polls too: its lines (and httpcore's) only
    with LOG_LEVEL=debug."""
    log_setup.setup("src", "[server]")
    log_setup.setup("", "[server]")
    if not logs.debug_enabled():
        for name in _CHATTY_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    request_id.install()


class Runtime:
    """The engines and health of one app instance, from lifespan start to exit.

    In a gateway worker (GATEWAY_BOARD, set by src/supervisor.py) the chat engine runs in the
    supervisor: this process proxies to it and reads its state from the board.
    """

    def __init__(self, settings: Settings, handle_signals: bool = True) -> None:
        """Create the health board for the deployed engines; start() brings them up."""
        self.settings = settings
        engines = tuple(n for n, on in (("chat", settings.serves_chat),
                                        ("tool", settings.serves_tool)) if on)
        board = Board(settings.gateway_board) if settings.gateway_board else None
        self.health = Health(engines, settings.max_in_flight_here, board)
        self.handle_signals = handle_signals
        self.tool: ToolEngine | None = None
        self.chat: ChatEngine | None = None
        self.exit_code = 0
        self._uvicorn_handler: Any = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False

    async def start(self) -> None:
        """Install the SIGTERM drain, spawn the chat engine, load the tool model in background."""
        if self.handle_signals:
            self._uvicorn_handler = signal.getsignal(signal.SIGTERM)
            loop = asyncio.get_running_loop()
            signal.signal(signal.SIGTERM,
                          lambda _s, f: loop.call_soon_threadsafe(self._on_sigterm, f))
        if self.settings.serves_chat:
            self.chat = ChatEngine(self.settings, lambda st: self.health.set("chat", st),
                                   self.fatal)
            if self.health.board is None:
                await self.chat.start()
        if self.settings.serves_tool:
            s = self.settings
            self.tool = ToolEngine(s.tool_model_path, s.tool_max_batch, s.tool_batch_wait_ms,
                                   s.tool_gpu_frac, lambda: self.health.in_flight)
            self._spawn(self._load_tool(self.tool))

    def _spawn(self, coro: Any) -> None:
        """Run a background task, keeping a reference until it ends."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _load_tool(self, tool: ToolEngine) -> None:
        """Load the tool model off the event loop; any failure is fatal (the app exits 1)."""
        try:
            await asyncio.to_thread(tool.load)
        except Exception as exc:  # a corrupt file, CUDA out of memory...: all end the app
            self.health.set("tool", EngineState.FAILED)
            if isinstance(exc, ToolModelError):
                log.error("%s", exc)
            else:
                first = (str(exc).splitlines() or [""])[0]
                log.error("the tool model in %s failed to load: %s: %s",
                          self.settings.tool_model_path, type(exc).__name__, first)
            self.fatal(1)
            return
        tool.start()
        # torch and the model leave millions of long-lived objects; frozen, a full collection
        # (set off by a request that makes many objects) no longer walks them all (a body of
        # 350k small lists held the loop 2.4 s with them, 0.5 s without).
        gc.freeze()
        self.health.set("tool", EngineState.READY)

    def fatal(self, code: int) -> None:
        """An engine died: remember the status and shut the server down; it exits with it."""
        if self.exit_code:
            return
        self.exit_code = code
        log.error("shutting down: an engine failed (exit status %s)", code)
        self._shut_down(0.0, None)

    def _on_sigterm(self, frame: FrameType | None) -> None:
        """First SIGTERM: drain (a gateway worker whose engine died: without grace); a second
        one: hand over to uvicorn at once."""
        if self.health.stopping:
            if callable(self._uvicorn_handler):
                self._uvicorn_handler(signal.SIGTERM, frame)
            return
        board = self.health.board
        if board is not None and board.stop is Stop.FATAL:
            self._shut_down(0.0, frame)
            return
        log.info("SIGTERM: draining (up to SHUTDOWN_GRACE_S=%ss for %d request(s) in flight)",
                 self.settings.shutdown_grace_s, self.health.in_flight)
        self._shut_down(self.settings.shutdown_grace_s, frame)

    def _shut_down(self, grace: float, frame: FrameType | None) -> None:
        """Refuse new requests and run the drain (once; a later call changes nothing)."""
        if self.health.stopping:
            return
        self.health.start_draining()
        self._spawn(self._drain(grace, frame))

    async def _drain(self, grace: float, frame: FrameType | None) -> None:
        """Wait for requests in flight (up to grace), cut the rest, stop the engines and uvicorn.

        Cut requests end at once (an event stream with an error event, others with 503), so
        uvicorn has nothing left to wait for: the process ends within grace + the engine stop.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self.health.in_flight > 0 and loop.time() < deadline:
            await asyncio.sleep(0.02)
        cut = self.health.cut_all()
        if cut:
            log.warning("%d request(s) still in flight after %ss; cut short", cut, grace)
        await self.stop_engines()
        if callable(self._uvicorn_handler):
            self._uvicorn_handler(signal.SIGTERM, frame)

    async def stop_engines(self) -> None:
        """Stop the tool batcher and the chat engine child; harmless when called twice."""
        if self._stopped:
            return
        self._stopped = True
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        if self.tool is not None:
            await self.tool.stop()
        if self.chat is not None:
            await self.chat.stop()

    async def stop(self) -> None:
        """Lifespan end: stop the engines; after a fatal engine error, exit with its status."""
        await self.stop_engines()
        if self.exit_code and self.handle_signals:
            log.error("exiting with status %s", self.exit_code)
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
            # uvicorn exits 0 after a shutdown it did not cause itself; the container must see
            # the failure to restart, and nothing is left to clean up at this point.
            os._exit(self.exit_code)
