"""The gateway on several cores (GATEWAY_WORKERS=2, src/supervisor.py), run with the command
server.sh builds: real uvicorn workers, tests/apps/fake_openai.py as the one chat engine.

A worker is addressed alone by stopping the others (SIGSTOP): only it then accepts connections
on the shared socket."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from conftest import TEST_KEY, AppProcess, pid_gone, wait_until
from prometheus_client.parser import text_string_to_metric_families

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
CHAT = {"messages": [{"role": "user", "content": "hi"}], "stream": True}


@pytest.fixture
def gateway(app_process: Callable[..., AppProcess], tmp_path: Path) -> Callable[..., AppProcess]:
    """A factory: start_gateway(fake_args, **env) → the app with GATEWAY_WORKERS=2, as server.sh
    starts it (a fresh PROMETHEUS_MULTIPROC_DIR); every process it started is checked gone
    after."""
    started: list[AppProcess] = []

    def start(fake_args: str = "", **env: str) -> AppProcess:
        metrics_dir = tmp_path / f"metrics-{len(started)}"
        metrics_dir.mkdir()
        app = app_process(fake_args, GATEWAY_WORKERS="2",
                          PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), **env)
        started.append(app)
        return app

    yield start
    for app in started:
        app.stop()
        assert family(app) == [], "processes left behind"


def family(app: AppProcess) -> list[int]:
    """Every live process started for this app: they all carry its CHAT_ENGINE_PORT."""
    marker = f"CHAT_ENGINE_PORT={app.engine_port}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and marker in (entry / "environ").read_bytes():
                found.append(int(entry.name))
    return [pid for pid in found if not pid_gone(pid)]


def children(pid: int) -> list[int]:
    """The live child processes of pid."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit():
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == pid and stat[0] != "Z":
                    found.append(int(entry.name))
    return sorted(found)


def manager(app: AppProcess) -> int:
    """uvicorn's manager: the supervisor's child that is not the engine."""
    engines = app.engine_pids()
    (pid,) = [p for p in children(app.proc.pid) if p not in engines]
    return pid


def live_workers(app: AppProcess) -> list[int]:
    """The manager's workers (its children but multiprocessing's resource tracker)."""
    return [pid for pid in children(manager(app))
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def workers(app: AppProcess, count: int = 2) -> list[int]:
    """The manager's workers, once there are count of them."""
    wait_until(lambda: len(live_workers(app)) == count, 60, f"{count} workers")
    return live_workers(app)


@contextlib.contextmanager
def only(app: AppProcess, worker: int) -> Iterator[None]:
    """Stop every other worker (SIGSTOP) so that this one accepts every connection; resume."""
    others = [pid for pid in workers(app) if pid != worker]
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: all(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
                               == "T" for p in others), 5, "the other workers stopped")
        yield
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)


def health(app: AppProcess) -> tuple[int, dict]:
    """/healthz on a new connection: status code and body."""
    resp = app.get("/healthz")
    return resp.status_code, resp.json()


def stream(app: AppProcess) -> str:
    """One streamed chat completion through the app; the text of its events."""
    resp = httpx.post(app.url + "/v1/chat/completions", json=CHAT, headers=AUTH, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.text


def metric(app: AppProcess, name: str, **labels: str) -> float:
    """One sample of /metrics (0 when absent), parsed by prometheus_client's own parser."""
    for family_ in text_string_to_metric_families(app.get("/metrics").text):
        for sample in family_.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_each_worker_serves_every_route_over_the_one_engine(
        gateway: Callable[..., AppProcess]) -> None:
    app = gateway(CHAT_GENERATION_CHECK="1")
    app.wait_ready(90)
    pids = workers(app)
    for worker in pids:
        with only(app, worker):
            assert health(app) == (200, {"status": "ready", "engines": {"chat": "ready"}})
            assert app.get("/v1/models", headers=AUTH).json()["data"][0]["id"] == "chat"
            assert stream(app).rstrip().endswith("data: [DONE]")
            assert app.get("/metrics").status_code == 200
    # One engine, started once, checked once: the fake got a single generation check.
    assert len(app.engine_pids()) == 1
    assert app.output().count("starting chat engine:") == 1
    stats = app.engine_stats()
    assert [r["path"] for r in stats["requests"]] == ["/v1/completions"] + \
        ["/v1/chat/completions"] * len(pids)
    # /metrics sums the workers (a stream each); the engine state is written once, not per worker.
    route = "/v1/chat/completions"
    assert metric(app, "text_inference_requests_total", route=route, status="200") == len(pids)
    assert metric(app, "text_inference_engine_state", engine="chat", state="ready") == 1
    assert metric(app, "text_inference_requests_in_flight_limit") == 64  # shared out, summed
    # The engine's own metrics, through the app: the streams and the generation check.
    assert metric(app, "vllm:request_success_total") == len(pids) + 1


def test_every_worker_reports_the_engine_loading_then_ready_then_failed(
        gateway: Callable[..., AppProcess]) -> None:
    """One writer: the supervisor's health checks; every worker reads the same state."""
    app = gateway("--ready-after 6 --hang-health-after 14", CHAT_HEALTH_FAILURES="0")
    wait_until(lambda: app.health() != 0, 60, "/healthz answering")
    for worker in workers(app):
        with only(app, worker):
            assert health(app) == (503, {"status": "loading", "engines": {"chat": "loading"}})
            resp = httpx.post(app.url + "/v1/chat/completions", json=CHAT, headers=AUTH)
            assert resp.status_code == 503 and "loading" in resp.json()["error"]["message"]
    app.wait_ready(30)
    for worker in workers(app):
        with only(app, worker):
            assert health(app)[0] == 200
    wait_until(lambda: app.health() == 503, 30, "the hung engine reported failed")
    for worker in workers(app):
        with only(app, worker):
            assert health(app) == (503, {"status": "failed", "engines": {"chat": "failed"}})
    assert app.proc.poll() is None  # CHAT_HEALTH_FAILURES=0: waits for the engine


def test_an_engine_that_dies_ends_everything_with_its_status(
        gateway: Callable[..., AppProcess]) -> None:
    app = gateway("--crash-after 8")
    app.wait_ready(60)
    engine = app.engine_pids()
    assert app.wait_exit(60) == 3
    out = app.output()
    assert "chat engine exited with status 3; last output lines:" in out
    assert "fake engine: simulated crash" in out and "exiting with status 3" in out
    assert family(app) == [] and all(pid_gone(p) for p in engine)


def test_sigterm_drains_every_worker_then_stops_the_engine_and_exits_143(
        gateway: Callable[..., AppProcess]) -> None:
    app = gateway("--chunks 10 --delay 0.3", SHUTDOWN_GRACE_S="8")
    app.wait_ready(60)
    result: dict[str, str] = {}
    client = threading.Thread(target=lambda: result.update(text=stream(app)))
    client.start()
    wait_until(lambda: app.engine_stats()["started"] == 1, 10, "the stream started")
    start = time.monotonic()
    app.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: app.health() == 503, 5, "draining")
    assert health(app)[1] == {"status": "draining", "engines": {"chat": "draining"}}
    refused = httpx.post(app.url + "/v1/chat/completions", json=CHAT, headers=AUTH)
    assert refused.status_code == 503
    assert refused.json()["error"]["type"] == "server_shutting_down"
    assert app.wait_exit(30) == -signal.SIGTERM
    client.join(10)
    assert result["text"].rstrip().endswith("data: [DONE]")  # finished within the grace
    assert time.monotonic() - start < 8 + 5 + 1  # grace + ENGINE_STOP_TIMEOUT + margin
    assert family(app) == []


def test_a_killed_worker_is_replaced_and_the_engine_untouched(
        gateway: Callable[..., AppProcess]) -> None:
    app = gateway()
    app.wait_ready(60)
    engine, before = app.engine_pids(), workers(app)
    os.kill(before[0], signal.SIGKILL)
    wait_until(lambda: len(live_workers(app)) == 2 and before[0] not in live_workers(app), 60,
               "a new worker")
    after = workers(app)
    assert before[1] in after and before[0] not in after
    for worker in after:
        with only(app, worker):
            wait_until(lambda: app.health() == 200, 60, "the new worker serving")
            assert stream(app).rstrip().endswith("data: [DONE]")
    assert app.engine_pids() == engine and app.proc.poll() is None
    assert app.output().count("starting chat engine:") == 1


def test_a_dead_manager_ends_the_container(gateway: Callable[..., AppProcess]) -> None:
    app = gateway()
    app.wait_ready(60)
    os.kill(manager(app), signal.SIGKILL)
    assert app.wait_exit(30) == 1
    assert "the gateway's workers (uvicorn, PID" in app.output()
    assert family(app) == []


def test_the_supervisor_needs_the_metrics_directory(app_process: Callable[..., AppProcess]) -> None:
    app = app_process(GATEWAY_WORKERS="2")
    assert app.wait_exit(30) == 1
    lines = app.output().strip().splitlines()
    assert lines == ["[server] ✗ PROMETHEUS_MULTIPROC_DIR is unset; the gateway's workers sum "
                     "their metrics there (server.sh makes it)"]
    assert app.engine_pids() == []


def test_bad_gateway_settings_stop_the_supervisor_with_one_line(
        gateway: Callable[..., AppProcess]) -> None:
    app = gateway(DEPLOY_MODE="both")
    assert app.wait_exit(30) == 1
    assert app.output().strip().splitlines() == [
        "[server] ✗ GATEWAY_WORKERS=2 with DEPLOY_MODE=both: several gateway workers serve the "
        "chat engine only (the tool model is loaded in one process); set DEPLOY_MODE=chat, or "
        "GATEWAY_WORKERS=1 (tool-only scales with UVICORN_WORKERS)"]
    assert family(app) == []
