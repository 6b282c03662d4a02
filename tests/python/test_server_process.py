"""src.server:app under real uvicorn with tests/apps/fake_openai.py as the chat engine child."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
from conftest import TEST_KEY, AppProcess, pid_gone, wait_until

StartApp = Callable[..., AppProcess]

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
CHAT = {"messages": [{"role": "user", "content": "hi"}], "stream": True}


def stream(
    app: AppProcess, body: dict = CHAT, path: str = "/v1/chat/completions"
) -> AbstractContextManager[httpx.Response]:
    """An open streaming POST through the app (a context manager)."""
    return httpx.stream("POST", app.url + path, json=body, headers=AUTH, timeout=10)


def data_lines(lines: Iterable[str] | Iterator[str]) -> list[str]:
    """The SSE data lines of an iterator of lines."""
    return [line for line in lines if line.startswith("data:")]


def test_health_goes_loading_ready_then_crash_exits_non_zero(app_process: StartApp) -> None:
    app = app_process("--ready-after 1.5 --crash-after 4")
    wait_until(lambda: app.health() != 0, 20, "the server to answer")
    loading = app.get("/healthz")
    assert loading.status_code == 503 and loading.headers["retry-after"]
    assert loading.json() == {"status": "loading", "engines": {"chat": "loading"}}
    app.wait_ready()
    engine_pid = app.engine_stats()["pid"]
    assert app.wait_exit() == 3  # the engine's own status
    out = app.output()
    assert "chat engine exited with status 3" in out and "simulated crash" in out
    assert "Traceback" not in out and TEST_KEY not in out
    wait_until(lambda: pid_gone(engine_pid), 10, "the engine process to be gone")


def test_hung_engine_turns_health_to_failed(app_process: StartApp) -> None:
    app = app_process("--hang-health-after 2", CHAT_HEALTH_FAILURES="0")
    app.wait_ready()
    wait_until(lambda: app.health() == 503, 10, "/healthz 503 once the engine hangs")
    assert app.get("/healthz").json() == {"status": "failed", "engines": {"chat": "failed"}}
    assert app.get("/livez").status_code == 200
    resp = httpx.post(app.url + "/v1/completions", json={"prompt": "x"}, headers=AUTH, timeout=5)
    assert resp.status_code == 503 and resp.headers["retry-after"]
    assert app.proc.poll() is None  # CHAT_HEALTH_FAILURES=0: never exits on its own


def test_hung_engine_ends_the_app_after_failed_checks_in_a_row(app_process: StartApp) -> None:
    app = app_process("--hang-health-after 1.5", CHAT_HEALTH_FAILURES="3")
    app.wait_ready()
    engine_pid = app.engine_stats()["pid"]
    assert app.wait_exit() == 1
    out = app.output()
    assert "failed 3 health checks in a row (CHAT_HEALTH_FAILURES=3): it is hung" in out
    assert "Traceback" not in out
    wait_until(lambda: pid_gone(engine_pid), 10, "the hung engine to be gone")


def test_completion_prompts_as_token_ids_pass_through(app_process: StartApp) -> None:
    app = app_process()
    app.wait_ready()
    for prompt in ([1, 2, 3], [[1, 2], [3]], ["a", "b"]):
        resp = httpx.post(app.url + "/v1/completions", json={"prompt": prompt}, headers=AUTH,
                          timeout=5)
        assert resp.status_code == 200, resp.text
    bad = httpx.post(app.url + "/v1/completions", json={"prompt": [1.5]}, headers=AUTH, timeout=5)
    assert bad.status_code == 422 and "prompt.list[int].0" in bad.json()["error"]["message"]


def test_client_leaving_a_non_streamed_request_cancels_upstream(app_process: StartApp) -> None:
    app = app_process("--answer-after 20")
    app.wait_ready()
    with contextlib.suppress(httpx.ReadTimeout):
        httpx.post(app.url + "/v1/completions", json={"prompt": "x"}, headers=AUTH, timeout=0.5)
    wait_until(lambda: app.engine_stats()["cancelled"] == 1, 10, "the engine to see the cancel")
    assert app.engine_stats()["completed"] == 0
    # the slot is free again: a quick answer still comes through
    assert httpx.get(app.url + "/v1/models", headers=AUTH, timeout=5).status_code == 200


def test_tool_model_that_fails_to_load_ends_the_app(app_process: StartApp, tmp_path: Path,
                                                     tiny_model_dir: Path) -> None:
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model_dir, broken)
    weights = next(broken.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])  # a truncated download
    app = app_process(DEPLOY_MODE="tool", TOOL_MODEL_PATH=str(broken))
    assert app.wait_exit(timeout=60) == 1
    out = app.output()
    assert f"the tool model in {broken} failed to load" in out or "cannot be loaded" in out
    assert "Traceback" not in out


def test_stream_arrives_incrementally_and_child_gets_no_secret(app_process: StartApp) -> None:
    app = app_process("--chunks 5 --delay 0.3")
    app.wait_ready()
    with stream(app) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = resp.iter_lines()
        first = next(line for line in lines if line.startswith("data:"))
        stats = app.engine_stats()
        assert stats["started"] == 1 and stats["completed"] == 0 and stats["produced"] < 5
        rest = data_lines(lines)
    assert '"tok0 "' in first and rest[-1] == "data: [DONE]" and len(rest) == 5
    stats = app.engine_stats()
    assert stats["completed"] == 1 and stats["secret_env"] == []


def test_non_streaming_completion_and_default_model(app_process: StartApp) -> None:
    app = app_process(SERVED_MODEL_NAME="my-chat")
    app.wait_ready()
    resp = httpx.post(app.url + "/v1/completions", json={"prompt": "hi"}, headers=AUTH, timeout=5)
    assert resp.status_code == 200
    assert resp.json()["model"] == "my-chat" and resp.json()["choices"][0]["text"]
    models = httpx.get(app.url + "/v1/models", headers={"X-API-Key": TEST_KEY}, timeout=5).json()
    assert [m["id"] for m in models["data"]] == ["my-chat"]
    classify = httpx.post(app.url + "/v1/classify", json={"input": "x"}, headers=AUTH)
    assert classify.status_code == 404


def test_client_disconnect_cancels_upstream(app_process: StartApp) -> None:
    app = app_process("--chunks 100 --delay 0.1")
    app.wait_ready()
    with stream(app, {"prompt": "x", "stream": True}, "/v1/completions") as resp:
        next(line for line in resp.iter_lines() if line.startswith("data:"))
    wait_until(lambda: app.engine_stats()["cancelled"] == 1, 10, "the engine to see the cancel")
    assert app.engine_stats()["completed"] == 0


def test_requests_past_the_limit_get_429(app_process: StartApp) -> None:
    app = app_process("--chunks 100 --delay 0.1", MAX_CONCURRENT_CONNECTIONS="2")
    app.wait_ready()
    with stream(app) as one, stream(app) as two:
        assert one.status_code == two.status_code == 200
        extra = httpx.post(app.url + "/v1/completions", json={"prompt": "x"}, headers=AUTH)
        assert extra.status_code == 429 and extra.headers["retry-after"] == "1"
        assert "MAX_CONCURRENT_CONNECTIONS=2" in extra.json()["error"]["message"]
        assert app.health() == 200  # health is never limited
    wait_until(
        lambda: httpx.post(app.url + "/v1/completions", json={"prompt": "x"},
                           headers=AUTH).status_code == 200,
        10, "a slot to free up",
    )


def test_sigterm_drains_in_flight_then_exits_leaving_nothing(app_process: StartApp) -> None:
    app = app_process("--chunks 10 --delay 0.2", SHUTDOWN_GRACE_S="10")
    app.wait_ready()
    engine_pid = app.engine_stats()["pid"]
    with stream(app) as resp:
        lines = resp.iter_lines()
        next(line for line in lines if line.startswith("data:"))
        app.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: app.health() == 503, 5, "/healthz 503 while draining")
        assert app.get("/healthz").json() == {"status": "draining",
                                              "engines": {"chat": "draining"}}
        refused = httpx.post(app.url + "/v1/completions", json={"prompt": "x"}, headers=AUTH)
        assert refused.status_code == 503 and refused.headers["retry-after"]
        rest = data_lines(lines)
    assert rest[-1] == "data: [DONE]" and len(rest) == 10  # the in-flight answer is whole
    assert app.wait_exit() == -signal.SIGTERM
    wait_until(lambda: pid_gone(engine_pid), 10, "the engine process to be gone")
    assert "Traceback" not in app.output()


def test_grace_period_ends_streams_that_run_too_long(app_process: StartApp) -> None:
    app = app_process("--chunks 600 --delay 0.1", SHUTDOWN_GRACE_S="0.5")
    app.wait_ready()
    engine_pid = app.engine_stats()["pid"]
    with stream(app) as resp:
        lines = resp.iter_lines()
        next(line for line in lines if line.startswith("data:"))
        app.proc.send_signal(signal.SIGTERM)
        rest = data_lines(lines)
    assert "data: [DONE]" not in rest  # told it was cut, not a clean end
    error = json.loads(rest[-1].removeprefix("data: "))["error"]
    assert error["type"] == "server_shutting_down" and error["code"] == 503
    assert app.wait_exit(timeout=15) == -signal.SIGTERM
    assert pid_gone(engine_pid)
    assert "stream cut: POST /v1/chat/completions ended with an error event" in app.output()


def test_invalid_settings_exit_1_with_one_line(app_process: StartApp) -> None:
    app = app_process(DEPLOY_MODE="everything")
    assert app.wait_exit() == 1
    out = app.output()
    assert "DEPLOY_MODE='everything' is not valid; valid: chat, tool, both" in out
    assert "Traceback" not in out


def test_missing_engine_program_exits_127(app_process: StartApp) -> None:
    app = app_process(CHAT_ENGINE_CMD="/nonexistent/engine --serve")
    assert app.wait_exit() == 127
    out = app.output()
    assert "'/nonexistent/engine' cannot start" in out and "Traceback" not in out


# --- readiness: the start-up generation check (CHAT_GENERATION_CHECK, off in conftest) --------

CHECK_ON = {"CHAT_GENERATION_CHECK": "1"}


def engine_stats_or_none(app: AppProcess) -> dict | None:
    """The fake engine's /stats; None while it does not answer yet."""
    try:
        return app.engine_stats()
    except httpx.HTTPError:
        return None


def health_until_exit(app: AppProcess, timeout: float = 30) -> list[int]:
    """Every /healthz status seen (0: no answer) until the server exits."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while app.proc.poll() is None:
        assert time.monotonic() < deadline, f"the server did not exit within {timeout}s"
        seen.append(app.health())
        time.sleep(0.05)
    return seen


def test_ready_only_after_the_engine_generated_one_token(app_process: StartApp) -> None:
    app = app_process("--answer-after 3", SERVED_MODEL_NAME="my-chat", **CHECK_ON)
    wait_until(lambda: (engine_stats_or_none(app) or {}).get("started") == 1, 20,
               "the engine to receive the generation check")
    during = app.get("/healthz")
    stats = app.engine_stats()
    assert stats["completed"] == 0, "the check ended before /healthz was read: rerun"
    assert during.status_code == 503 and during.json()["status"] == "loading"
    app.wait_ready()
    stats = app.engine_stats()
    assert stats["completed"] == 1
    assert stats["requests"] == [{"path": "/v1/completions", "body": {
        "model": "my-chat", "prompt": "Hello", "max_tokens": 1}, "request_id": None}]
    assert "chat engine ready" in app.output()


def test_engine_that_cannot_generate_never_gets_ready_and_ends_the_app(
    app_process: StartApp,
) -> None:
    message = "Unsupported CPU attention configuration: head_dim=16"
    app = app_process(f"--generation-error '{message}'", **CHECK_ON)
    seen = health_until_exit(app)
    assert 200 not in seen
    assert app.wait_exit() == 1
    out = app.output()
    assert "chat engine answers /health but failed its generation check" in out
    assert f'HTTP 500: {{"error":{{"message":"{message}"' in out
    assert "chat engine ready" not in out and "Traceback" not in out


def test_generation_that_hangs_past_the_limit_ends_the_app(app_process: StartApp) -> None:
    app = app_process("--answer-after 60", CHAT_GENERATION_CHECK_TIMEOUT_S="1", **CHECK_ON)
    seen = health_until_exit(app)
    assert 200 not in seen
    assert app.wait_exit() == 1
    out = app.output()
    assert "failed its generation check (POST /v1/completions, max_tokens 1): no answer within " \
           "CHAT_GENERATION_CHECK_TIMEOUT_S=1.0s" in out
    assert "Traceback" not in out


def test_generation_check_off_ready_on_health_alone(app_process: StartApp) -> None:
    app = app_process("--generation-error 'cannot generate'", CHAT_GENERATION_CHECK="0")
    app.wait_ready()
    assert app.engine_stats()["requests"] == []  # nothing was generated to get ready
    assert app.get("/healthz").json() == {"status": "ready", "engines": {"chat": "ready"}}
