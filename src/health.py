"""Engine states, draining and the bound on requests in flight."""

from __future__ import annotations

import enum
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


class Health:
    """The states of the deployed engines, the draining flag and the requests in flight."""

    def __init__(self, engines: tuple[str, ...], max_in_flight: int) -> None:
        """Start every engine in `loading`, nothing in flight."""
        self.states: dict[str, EngineState] = {}
        self.max_in_flight = max_in_flight
        self.requests: set[Cuttable] = set()
        self.draining = False
        metrics.IN_FLIGHT_LIMIT.set(max_in_flight)
        for name in engines:
            self.set(name, EngineState.LOADING)

    def set(self, engine: str, state: EngineState) -> None:
        """Record an engine's state (ignored once draining, which wins)."""
        if not self.draining:
            self.states[engine] = state
            metrics.set_engine_state(engine, state.value, _STATES)

    def start_draining(self) -> None:
        """Turn every engine to `draining`; new inference requests are refused from now on."""
        for name in self.states:
            self.set(name, EngineState.DRAINING)
        self.draining = True

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
