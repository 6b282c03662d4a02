"""The gateway on several cores (GATEWAY_WORKERS above 1, DEPLOY_MODE=chat): this process starts
and watches the chat engine once (ChatEngine, exactly as a single app process does) and runs
uvicorn's workers, which serve every route over it and read its state from a Board.

Usage: python3 -m src.supervisor UVICORN_OPTIONS...
(server.sh's resolve_uvicorn_cmd builds the whole command; this Python runs `-m uvicorn` with
the options, and the workers get GATEWAY_BOARD.)

SIGTERM (or SIGINT): the board says draining, uvicorn's manager passes SIGTERM on to each
worker, which drains within SHUTDOWN_GRACE_S; then the engine stops (ENGINE_STOP_TIMEOUT) and
this process ends by the signal (143). The engine exits or hangs: the board says failed, the
workers stop without grace, and this process exits with the engine's status. A worker that
dies is replaced by uvicorn's manager; the manager itself ending ends the container.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile

from src.config.settings import Settings, SettingsError, load_settings
from src.config.timers import EXIT_MARGIN_S
from src.engines.chat import ChatEngine
from src.health import Board, EngineState, Health, Stop
from src.runtime import setup_logging

log = logging.getLogger("src.supervisor")


class Supervisor:
    """The chat engine and the workers' manager, from start to exit."""

    def __init__(self, settings: Settings, uvicorn_options: list[str], board_path: str) -> None:
        """Publish `loading` on a new board at board_path; run() starts everything."""
        self.settings, self.board_path = settings, board_path
        self.argv = [sys.executable, "-m", "uvicorn", *uvicorn_options]
        # No request is served here: a limit of 0 leaves the workers' shares as the metric's sum.
        self.health = Health(("chat",), 0)
        with open(board_path, "wb") as out:
            out.write(bytes(Board.SIZE))
        self.board = Board(board_path, write=True)
        self.stop = Stop.NO
        self.exit_code = 0
        self.signal = signal.SIGTERM
        self.stopped = asyncio.Event()
        self.chat = ChatEngine(settings, self._set_state, self._fatal)
        self.workers: asyncio.subprocess.Process | None = None
        self._publish()

    def _publish(self) -> None:
        """Write the engine's state and the stop to the board."""
        self.board.publish(self.health.states["chat"], self.stop)

    def _set_state(self, state: EngineState) -> None:
        """ChatEngine's state changes: recorded (the metric too) and published."""
        self.health.set("chat", state)
        self._publish()

    def _fatal(self, code: int) -> None:
        """The engine died: the workers stop without grace, then this process exits with code."""
        if self.stop is not Stop.NO:
            return
        log.error("shutting down: an engine failed (exit status %s)", code)
        self.exit_code, self.stop = code, Stop.FATAL
        self._publish()
        self.stopped.set()

    def _on_signal(self, sig: signal.Signals) -> None:
        """First SIGTERM or SIGINT: drain; a later one: every worker stops at once."""
        if self.stop is not Stop.NO:
            if self.workers is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.workers.pid, signal.SIGTERM)
            return
        log.info("%s: draining (up to SHUTDOWN_GRACE_S=%ss in each worker)", sig.name,
                 self.settings.shutdown_grace_s)
        self.signal, self.stop = sig, Stop.DRAIN
        self.health.start_draining()
        self._publish()
        self.stopped.set()

    async def run(self) -> int:
        """Start the engine and the workers, wait for a stop, stop both; the exit status."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        await self.chat.start()
        if self.stop is Stop.NO:  # not when the engine could not even start
            env = {**os.environ, "GATEWAY_BOARD": self.board_path}
            # A group of their own: a last SIGKILL reaches the manager and every worker.
            workers = await asyncio.create_subprocess_exec(*self.argv, env=env, process_group=0)
            self.workers = workers
            ended = asyncio.ensure_future(workers.wait())
            stopped = asyncio.ensure_future(self.stopped.wait())
            await asyncio.wait((ended, stopped), return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if ended.done():
                self._workers_ended(workers, ended.result())
            else:
                await self._stop_workers(workers, ended)
        await self.chat.stop()
        return self.exit_code

    def _workers_ended(self, workers: asyncio.subprocess.Process, code: int) -> None:
        """uvicorn's manager ended on its own (a worker that cannot start, a crash): exit too."""
        log.error("the gateway's workers (uvicorn, PID %s) exited with status %s", workers.pid,
                  code)
        self.exit_code, self.stop = (code if code > 0 else 1), Stop.FATAL
        self.health.set("chat", EngineState.FAILED)
        self._publish()
        _kill_group(workers)

    async def _stop_workers(self, workers: asyncio.subprocess.Process,
                            ended: asyncio.Future[int]) -> None:
        """SIGTERM to uvicorn's manager (which passes it to each worker once); SIGKILL to the
        group when they are not gone within their drain and EXIT_MARGIN_S."""
        with contextlib.suppress(ProcessLookupError):
            workers.send_signal(signal.SIGTERM)
        grace = self.settings.shutdown_grace_s if self.stop is Stop.DRAIN else 0.0
        try:
            await asyncio.wait_for(asyncio.shield(ended), grace + EXIT_MARGIN_S)
        except asyncio.TimeoutError:
            log.warning("the gateway's workers did not stop within %ss; killing them",
                        grace + EXIT_MARGIN_S)
        _kill_group(workers)
        await ended


def _kill_group(workers: asyncio.subprocess.Process) -> None:
    """SIGKILL to the workers' group: whatever of it is left (a manager gone leaves its workers)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(workers.pid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    """Check the settings, supervise; one line on stderr and status 1 when they are invalid."""
    setup_logging()
    try:
        settings = load_settings(os.environ)
        if not argv:
            raise SettingsError("usage: python3 -m src.supervisor UVICORN_OPTIONS... (server.sh "
                                "builds it when GATEWAY_WORKERS is above 1)")
        if not settings.metrics_multiproc_dir:
            raise SettingsError("PROMETHEUS_MULTIPROC_DIR is unset; the gateway's workers sum "
                                "their metrics there (server.sh makes it)")
    except SettingsError as exc:
        log.error("%s", exc)
        return 1
    fd, board_path = tempfile.mkstemp(prefix="gateway-board.")
    os.close(fd)
    try:
        supervisor = Supervisor(settings, argv, board_path)
        code = asyncio.run(supervisor.run())
    finally:
        os.unlink(board_path)
    if supervisor.stop is Stop.DRAIN:
        # End as a process stopped by the signal does (143 after SIGTERM), as uvicorn does.
        signal.signal(supervisor.signal, signal.SIG_DFL)
        os.kill(os.getpid(), supervisor.signal)
    if code:
        log.error("exiting with status %s", code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
