"""GET /metrics: parsed with prometheus_client's own parser, against real uvicorn and the fake
engine (tests/apps/fake_openai.py), in one and in several workers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, TEST_KEY, AppProcess, free_port, served_app, uvicorn_argv, wait_until
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from src.config.settings import Settings
from src.server import create_app

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
CHAT = "/v1/chat/completions"
# Text that must never reach a label: a prompt (and the key, and a path holding an id).
PROMPT = "prompt-marker-7f3a tell me a secret"
ODD_PATH = "/v1/no-such-route/id-4242-9xq"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, **kw: object) -> str:
    """The text of GET /metrics (200 expected)."""
    resp = httpx.get(url + "/metrics", timeout=10, **kw)  # type: ignore[arg-type]
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    return resp.text


def parse(text: str) -> Samples:
    """Every sample of an exposition: (name, labels) -> value; a family named twice fails."""
    families = list(text_string_to_metric_families(text))
    names = [f.name for f in families]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    return {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples) -> dict[tuple[str, frozenset], float]:
    """The series whose value changed, by how much (text_inference_* only)."""
    keys = {k for k in (*before, *after) if k[0].startswith("text_inference_")}
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in keys
            if after.get(k, 0.0) != before.get(k, 0.0)}


def requests_moved(before: Samples, after: Samples) -> dict[tuple[str, str, str], float]:
    """How text_inference_requests_total moved: (route, method, status) -> count, /metrics
    itself left out."""
    out = {}
    for (name, labels), delta in moved(before, after).items():
        label = dict(labels)
        if name == "text_inference_requests_total" and label["route"] != "/metrics":
            out[label["route"], label["method"], label["status"]] = delta
    return out


def read_first_event_then_close(url: str, body: bytes) -> None:
    """POST a streamed request on a raw socket, read until its first event, close: a cut."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = (f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TEST_KEY}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        sock.sendall(head.encode() + body)
        seen = b""
        while b"data:" not in seen:
            chunk = sock.recv(65536)
            assert chunk, "the connection closed before the first event"
            seen += chunk


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """The app (chat, 2 requests in flight at most) over a fake engine streaming 20 chunks
    50 ms apart (a stream lasts about a second)."""
    log = tmp_path_factory.mktemp("metrics") / "server.log"
    with served_app(log, "--chunks 20 --delay 0.05", MAX_CONCURRENT_CONNECTIONS="2") as app:
        yield app


def test_counters_move_by_exactly_the_requests_sent(app: AppProcess) -> None:
    """401s, a 429 from the in-flight gate, two whole streams, a cut stream, a whole answer and
    an unknown route: each counted once under its route template, method and status."""
    body = b'{"messages": [{"role": "user", "content": "hi"}], "stream": true}'
    before = parse(scrape(app.url))
    assert httpx.post(app.url + CHAT, content=body, timeout=10).status_code == 401
    assert httpx.post(app.url + CHAT, content=body, timeout=10,
                      headers={"X-API-Key": "wrong"}).status_code == 401
    headers = {**AUTH, "Content-Type": "application/json"}
    with httpx.Client(timeout=10) as client, contextlib.ExitStack() as stack:
        streams = [stack.enter_context(client.stream("POST", app.url + CHAT, content=body,
                                                     headers=headers)) for _ in range(2)]
        assert [resp.status_code for resp in streams] == [200, 200]  # both slots taken
        refused = httpx.post(app.url + CHAT, content=body, headers=headers, timeout=10)
        assert refused.status_code == 429
        during = parse(scrape(app.url))
        assert value(during, "text_inference_requests_in_flight") == 2
        assert value(during, "text_inference_requests_in_flight_limit") == 2
        for resp in streams:
            assert resp.read().rstrip().endswith(b"data: [DONE]")
    read_first_event_then_close(app.url, body)
    answer = httpx.post(app.url + "/v1/completions", json={"prompt": PROMPT}, headers=AUTH,
                        timeout=10)
    assert answer.status_code == 200
    assert httpx.get(app.url + ODD_PATH, headers=AUTH, timeout=10).status_code == 404
    wait_until(lambda: value(parse(scrape(app.url)), "text_inference_requests_in_flight") == 0,
               10, "the cut stream to leave")
    after = parse(scrape(app.url))

    assert requests_moved(before, after) == {
        (CHAT, "POST", "401"): 2, (CHAT, "POST", "429"): 1, (CHAT, "POST", "200"): 3,
        ("/v1/completions", "POST", "200"): 1, ("unmatched", "GET", "404"): 1,
    }
    changes = moved(before, after)
    assert changes[("text_inference_requests_rejected_total", frozenset())] == 1
    for outcome, count in (("completed", 2), ("cut", 1)):
        key = ("text_inference_streams_total", frozenset({("route", CHAT), ("outcome", outcome)}))
        assert changes[key] == count, outcome
    stream_labels = frozenset({("route", CHAT)})
    assert changes[("text_inference_stream_first_byte_seconds_count", stream_labels)] == 3
    assert changes[("text_inference_stream_duration_seconds_count", stream_labels)] == 3
    chat_post = frozenset({("route", CHAT), ("method", "POST")})
    assert changes[("text_inference_request_duration_seconds_count", chat_post)] == 6
    assert value(after, "text_inference_engine_state", engine="chat", state="ready") == 1
    assert value(after, "text_inference_engine_state", engine="chat", state="loading") == 0


def test_no_label_holds_a_key_a_prompt_or_a_raw_path(app: AppProcess) -> None:
    httpx.post(app.url + "/v1/completions", json={"prompt": PROMPT}, headers=AUTH, timeout=10)
    httpx.get(app.url + ODD_PATH, headers=AUTH, timeout=10)
    httpx.get(app.url + "/metrics?x=" + PROMPT, timeout=10)
    text = scrape(app.url)
    for needle in (TEST_KEY, "prompt-marker", "id-4242", "no-such-route"):
        assert needle not in text
    routes = {dict(labels)["route"] for (name, labels) in parse(text)
              if name.startswith("text_inference_request") and "route" in dict(labels)}
    served = {route.path for route in create_app(Settings(api_keys=("k",)), False).routes}
    assert routes <= served | {"unmatched"}


def test_engine_metrics_appear_through_the_app_with_their_names(app: AppProcess) -> None:
    """The fake engine's vllm:* series come through /metrics as it serves them; its process
    and Python families do not (the app reports its own: each family once)."""
    before = parse(scrape(app.url))
    for _ in range(2):
        resp = httpx.post(app.url + "/v1/completions", json={"prompt": "x"}, headers=AUTH,
                          timeout=10)
        assert resp.status_code == 200
    after = parse(scrape(app.url))
    success = {"model_name": "fake", "finished_reason": "stop"}
    assert value(after, "vllm:request_success_total", **success) - \
        value(before, "vllm:request_success_total", **success) == 2
    assert ("vllm:num_requests_running", frozenset({("model_name", "fake")})) in after
    engine = parse(httpx.get(app.engine_url + "/metrics", timeout=10).text)
    # process_start_time_seconds is the app's, as /proc tells it, not the engine's
    stat = Path(f"/proc/{app.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    boot = next(float(x.split()[1]) for x in Path("/proc/stat").read_text().splitlines()
                if x.startswith("btime"))
    app_started = boot + int(stat[19]) / os.sysconf("SC_CLK_TCK")
    assert value(after, "process_start_time_seconds") == pytest.approx(app_started, abs=0.02)
    assert value(engine, "process_start_time_seconds") > app_started + 0.1


def test_metrics_need_the_key_only_when_asked() -> None:
    for require, status in (("0", 200), ("1", 401)):
        settings = Settings(deploy_mode="tool", api_keys=("k1", "k2"),
                            metrics_require_key=require == "1")
        client = TestClient(create_app(settings, False))  # no lifespan: no model is loaded
        resp = client.get("/metrics")
        assert resp.status_code == status
        if status == 401:
            assert resp.json()["error"]["type"] == "invalid_api_key" and "k1" not in resp.text
            assert client.get("/metrics", headers={"X-API-Key": "k2"}).status_code == 200


def test_several_workers_report_one_sum(tiny_model_dir: Path, tmp_path: Path) -> None:
    """UVICORN_WORKERS=2 (tool-only) with PROMETHEUS_MULTIPROC_DIR, as server.sh runs it: the
    requests, texts and in-flight limits of both workers add up in every scrape."""
    port, metrics_dir = free_port(), tmp_path / "multiproc"
    metrics_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TEXT_API_KEY": TEST_KEY,
           "DEPLOY_MODE": "tool", "TOOL_MODEL_PATH": str(tiny_model_dir),
           "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "MAX_CONCURRENT_CONNECTIONS": "50"}
    argv = uvicorn_argv(port)
    argv[argv.index("--workers") + 1] = "2"
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        def both_ready() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                samples = parse(httpx.get(url + "/metrics", timeout=2).text)
                return value(samples, "text_inference_engine_state", engine="tool",
                             state="ready") == 2
            return False

        wait_until(both_ready, 120, "both workers' tool engines ready")

        def classify(n: int) -> int:
            with httpx.Client(timeout=30) as client:  # a connection each, so both workers serve
                body = {"input": [f"text {n}", "another"]}
                return client.post(url + "/v1/classify", json=body, headers=AUTH).status_code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert set(pool.map(classify, range(40))) == {200}
        samples = parse(scrape(url))
        assert value(samples, "text_inference_requests_total", route="/v1/classify",
                     method="POST", status="200") == 40
        assert value(samples, "text_inference_tool_batch_size_sum") == 80  # two texts each
        passes = value(samples, "text_inference_tool_batch_size_count")
        assert 1 <= passes <= 40
        assert value(samples, "text_inference_tool_inference_seconds_count") == passes
        assert value(samples, "text_inference_requests_in_flight_limit") == 100
        assert value(samples, "text_inference_requests_in_flight") == 0
        assert not any(name.startswith("process_") for name, _ in samples)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def observed(app: Callable[..., Awaitable[None]], path: str = "/v1/chat/completions") -> Samples:
    """Run one request through ObserveMiddleware around a bare ASGI app; how the metrics moved
    (app exceptions are swallowed here, as Starlette's outer layer would answer them)."""
    from prometheus_client import REGISTRY, generate_latest

    from src.observe import ObserveMiddleware

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        pass

    scope = {"type": "http", "path": path, "method": "POST", "headers": []}
    before = parse(generate_latest(REGISTRY).decode())
    with contextlib.suppress(RuntimeError):
        asyncio.run(ObserveMiddleware(app, frozenset({CHAT}))(scope, receive, send))
    return moved(before, parse(generate_latest(REGISTRY).decode()))


def test_a_stream_that_ends_with_an_error_event_a_crash_and_a_silent_end_are_told_apart() -> None:
    async def error_event(scope: dict, receive: object, send: Callable) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: {}\n\n", "more_body": True})
        await send({"type": "http.response.body", "more_body": False,
                    "body": b'\n\ndata: {"error": {"type": "engine_unavailable"}}\n\n'})

    async def crash(scope: dict, receive: object, send: Callable) -> None:
        raise RuntimeError("a bug")

    async def silent(scope: dict, receive: object, send: Callable) -> None:
        pass  # the client left before any answer

    streams = observed(error_event)
    key = ("text_inference_streams_total", frozenset({("route", CHAT), ("outcome", "error_event")}))
    assert streams[key] == 1
    for app, status in ((crash, "500"), (silent, "499")):
        changes = observed(app, "/v1/nope/123")
        labels = frozenset({("route", "unmatched"), ("method", "POST"), ("status", status)})
        assert changes[("text_inference_requests_total", labels)] == 1
        assert not any(name == "text_inference_streams_total" for name, _ in changes)
