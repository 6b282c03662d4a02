"""Every timer of a container's start and stop: one table, and the rules that tie them together.

Start. The app loads its engines; warmup.sh polls /healthz and gives up after WARMUP_MAX_WAIT
(an error in the log; with WARMUP_FAIL_EXIT=1 the container stops). The image's HEALTHCHECK
gives up (Docker marks the container unhealthy) `retries` failed checks after its start period:
at start period + interval x retries, which is WARMUP_MAX_WAIT's default, so the two give up
together; the Dockerfiles' HEALTHCHECK lines are written from HEALTHCHECKS
(tests/python/test_dockerfiles.py compares them). A Kubernetes overlay sets WARMUP_MAX_WAIT to
its startup probe's budget (tests/python/test_kubernetes.py).

Stop. SIGTERM reaches the app, which drains requests in flight (SHUTDOWN_GRACE_S), stops its
chat engine (ENGINE_STOP_TIMEOUT: SIGTERM, then SIGKILL) and lets uvicorn exit (EXIT_MARGIN_S).
The shell's last-resort SIGKILL (SERVER_STOP_TIMEOUT) comes after all three: unset, it is their
sum; set, it may not be less. The defaults fit in `docker stop`'s DOCKER_STOP_TIMEOUT_S; longer
drains need `docker stop -t` / `docker run --stop-timeout` (or a Kubernetes grace period) above
SERVER_STOP_TIMEOUT.

Standard library only: the bootstrap reads it before anything heavy is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from src.config.parse import SettingsError, decimal, get, seconds

# What `docker stop` and `docker compose down` wait after SIGTERM before SIGKILL, by default.
DOCKER_STOP_TIMEOUT_S = 10.0
# Drain: requests in flight may finish (a classification takes milliseconds, a short answer a
# few seconds); then they are cut short.
SHUTDOWN_GRACE_S = 5.0
# The chat engine's stop: SIGTERM to its process group, SIGKILL after this long.
ENGINE_STOP_TIMEOUT = 3.0
# uvicorn's own exit once the app has stopped its engines (lifespan end, sockets closed).
EXIT_MARGIN_S = 1.0
# The longest timer the shell takes (warmup.sh reads up to six digits of whole seconds).
LONGEST_S = 999999.0


@dataclass(frozen=True)
class HealthCheck:
    """An image's HEALTHCHECK, built so that Docker gives up when warmup does."""

    interval_s: int
    timeout_s: int
    retries: int
    give_up_s: int

    @property
    def start_period_s(self) -> int:
        """The start period: failed checks count only after it."""
        return self.give_up_s - self.interval_s * self.retries

    def dockerfile_options(self) -> str:
        """The options of the Dockerfile's HEALTHCHECK instruction."""
        return (f"--interval={self.interval_s}s --timeout={self.timeout_s}s "
                f"--start-period={self.start_period_s}s --retries={self.retries}")


# Per stack: a GPU image loads tens of GB of weights and compiles kernels (10 min); the tool
# image's classifier loads in seconds (2 min).
HEALTHCHECKS = {
    "vllm": HealthCheck(interval_s=15, timeout_s=5, retries=3, give_up_s=600),
    "trt": HealthCheck(interval_s=15, timeout_s=5, retries=3, give_up_s=600),
    "tool": HealthCheck(interval_s=10, timeout_s=5, retries=3, give_up_s=120),
}


@dataclass(frozen=True)
class Timers:
    """The resolved start and stop timers of one container, in seconds."""

    warmup_max_wait_s: float
    shutdown_grace_s: float
    engine_stop_timeout_s: float
    server_stop_timeout_s: float


def drain_timers(env: Mapping[str, str]) -> tuple[float, float]:
    """SHUTDOWN_GRACE_S and ENGINE_STOP_TIMEOUT: the app's part of a stop."""
    return (seconds(env, "SHUTDOWN_GRACE_S", SHUTDOWN_GRACE_S, 0.0, LONGEST_S),
            seconds(env, "ENGINE_STOP_TIMEOUT", ENGINE_STOP_TIMEOUT, 0.0, LONGEST_S))


def load_timers(env: Mapping[str, str], stack: str) -> Timers:
    """Every timer of a start and a stop for a stack; SettingsError when they disagree."""
    if stack not in HEALTHCHECKS:
        raise SettingsError(f"stack {stack!r} is not valid; valid: {', '.join(HEALTHCHECKS)}")
    drain, engine = drain_timers(env)
    warmup = seconds(env, "WARMUP_MAX_WAIT", HEALTHCHECKS[stack].give_up_s, 0.1, LONGEST_S)
    needs = drain + engine + EXIT_MARGIN_S
    kill = seconds(env, "SERVER_STOP_TIMEOUT", needs, 0.1, LONGEST_S)
    if kill < needs:
        raise SettingsError(
            f"SERVER_STOP_TIMEOUT={get(env, 'SERVER_STOP_TIMEOUT')!r} would kill the server "
            f"before its stop ends: SHUTDOWN_GRACE_S {decimal(drain)} + ENGINE_STOP_TIMEOUT "
            f"{decimal(engine)} + {decimal(EXIT_MARGIN_S)} s to exit = {decimal(needs)} s; raise "
            f"it to at least {decimal(needs)}, or "
            "unset it (it is then that sum)"
        )
    return Timers(warmup, drain, engine, kill)


def timer_records(env: Mapping[str, str], stack: str) -> list[tuple[str, str, str]]:
    """(name, source, value) of each timer the shell uses, for the bootstrap to export."""
    timers = load_timers(env, stack)
    values = {"WARMUP_MAX_WAIT": (timers.warmup_max_wait_s, "default"),
              "SHUTDOWN_GRACE_S": (timers.shutdown_grace_s, "default"),
              "ENGINE_STOP_TIMEOUT": (timers.engine_stop_timeout_s, "default"),
              "SERVER_STOP_TIMEOUT": (timers.server_stop_timeout_s, "derived")}
    return [(name, "user" if get(env, name) else source, decimal(value))
            for name, (value, source) in values.items()]
