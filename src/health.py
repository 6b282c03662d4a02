"""Engine states, draining and the bound on requests in flight; the board that shares the chat
engine's state between the gateway's supervisor and its workers."""

from __future__ import annotations

import enum
import mmap
import os
from typing import Protocol

from src import metrics


class Cuttable(Protocol):
    """A request in flight that the server can cut short (an anyio CancelScope)."""

    def cancel(self) -> None:
        """Stop the request where it is."""


class EngineState(str, enum.Enum):
    """The state of one engine as /healthz reports it."""

    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    DRAINING = "draining"


_STATES = tuple(state.value for state in EngineState)
_ORDER = tuple(EngineState)


class Stop(enum.IntEnum):
    """What the supervisor asks of its workers (Board.stop)."""

    NO = 0
    DRAIN = 1  # SIGTERM: drain within SHUTDOWN_GRACE_S
    FATAL = 2  # the engine died: stop without grace


class Board:
    """The chat engine's state and the supervisor's stop, two bytes in a file mapped into memory:
    src/supervisor.py is the one writer, its workers read it on every /healthz and /v1 request
    (a memory read, no system call), so every worker reports the same state at the same time."""

    SIZE = 2

    def __init__(self, path: str, write: bool = False) -> None:
        """Map the file at path (write: the supervisor, which made it SIZE bytes long)."""
        fd = os.open(path, os.O_RDWR if write else os.O_RDONLY)
        try:
            self._map = mmap.mmap(fd, self.SIZE, access=mmap.ACCESS_WRITE if write
                                  else mmap.ACCESS_READ)
        finally:
            os.close(fd)

    @property
    def state(self) -> EngineState:
        """The chat engine's state."""
        return _ORDER[self._map[0]]

    @property
    def stop(self) -> Stop:
        """Whether the supervisor is stopping, and how."""
        return Stop(self._map[1])

    def publish(self, state: EngineState, stop: Stop) -> None:
        """Write the state and the stop (the supervisor only)."""
        self._map[1] = stop
        self._map[0] = _ORDER.index(state)


class Health:
    """The states of the deployed engines, the draining flag and the requests in flight.

    With a board (a gateway worker: src/supervisor.py), the chat engine's state and the
    supervisor's draining are read from it; this process writes no engine state of its own.
    """

    def __init__(self, engines: tuple[str, ...], max_in_flight: int,
                 board: Board | None = None) -> None:
        """Start every engine in `loading`, nothing in flight."""
        self.local: dict[str, EngineState] = {}
        self.board = board
        self.max_in_flight = max_in_flight
        self.requests: set[Cuttable] = set()
        self.stopping = False  # this process started its drain
        metrics.IN_FLIGHT_LIMIT.set(max_in_flight)
        for name in () if board is not None else engines:
            self.set(name, EngineState.LOADING)

    @property
    def states(self) -> dict[str, EngineState]:
        """Each deployed engine's state."""
        return self.local if self.board is None else {"chat": self.board.state}

    @property
    def draining(self) -> bool:
        """True once this process, or the supervisor of its board, started draining."""
        return self.stopping or (self.board is not None and self.board.stop is not Stop.NO)

    def set(self, engine: str, state: EngineState) -> None:
        """Record an engine's state (ignored once draining, which wins)."""
        if not self.stopping:
            self.local[engine] = state
            metrics.set_engine_state(engine, state.value, _STATES)

    def start_draining(self) -> None:
        """Turn every engine to `draining`; new inference requests are refused from now on."""
        for name in self.local:
            self.set(name, EngineState.DRAINING)
        self.stopping = True

    @property
    def ready(self) -> bool:
        """True when every deployed engine is ready."""
        return all(s is EngineState.READY for s in self.states.values())

    def report(self) -> dict[str, object]:
        """The /healthz body: overall status and each engine's state."""
        if self.draining:
            status = "draining"
        elif self.ready:
            status = "ready"
        elif EngineState.FAILED in self.states.values():
            status = "failed"
        else:
            status = "loading"
        return {"status": status, "engines": {k: v.value for k, v in self.states.items()}}

    @property
    def in_flight(self) -> int:
        """How many requests are in flight."""
        return len(self.requests)

    def try_enter(self, request: Cuttable) -> bool:
        """Count a new request in flight; False when the bound is reached."""
        if len(self.requests) >= self.max_in_flight:
            metrics.REJECTED.inc()
            return False
        self.requests.add(request)
        metrics.IN_FLIGHT.inc()
        return True

    def leave(self, request: Cuttable) -> None:
        """Count a request out."""
        if request in self.requests:
            self.requests.remove(request)
            metrics.IN_FLIGHT.dec()

    def cut_all(self) -> int:
        """Cut every request in flight short; how many there were."""
        for request in self.requests:
            request.cancel()
        return len(self.requests)
