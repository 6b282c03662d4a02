"""src/server.py in-process (tool deploy mode, real tiny model): auth, routes, bodies, health."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from src.config.settings import load_settings
from src.schemas import CompletionRequest
from src.server import create_app, with_model

KEYS = "old-key,new-key"
BEARER = {"Authorization": "Bearer new-key"}


@pytest.fixture(scope="module")
def client(tiny_model_dir: Path) -> Iterator[TestClient]:
    """The app in tool mode with the tiny model, ready; limits 4 texts of 4096 characters."""
    settings = load_settings({
        "TEXT_API_KEY": KEYS, "DEPLOY_MODE": "tool", "TOOL_MODEL_PATH": str(tiny_model_dir),
        "TOOL_MAX_BATCH": "4",
    })
    with TestClient(create_app(settings, handle_signals=False), raise_server_exceptions=False) as c:
        deadline = time.monotonic() + 60
        while c.get("/healthz").status_code != 200:
            assert time.monotonic() < deadline, "tool engine never became ready"
            time.sleep(0.05)
        yield c


def test_health_and_liveness_need_no_key_and_show_no_paths(
    client: TestClient, tiny_model_dir: Path
) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ready", "engines": {"tool": "ready"}}
    assert str(tiny_model_dir) not in health.text
    assert client.get("/livez").json() == {"status": "alive"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}, {"Authorization": "new-key"},
     {"Authorization": "Bearer "}, {"X-API-Key": "old-key,new-key"}],
)
def test_missing_or_wrong_key_is_401_in_openai_shape(client: TestClient, headers: dict) -> None:
    resp = client.post("/v1/classify", json={"input": "good"}, headers=headers)
    assert resp.status_code == 401
    error = resp.json()["error"]
    assert error["type"] == "invalid_api_key" and "X-API-Key" in error["message"]
    assert "old-key" not in resp.text and "new-key" not in resp.text


@pytest.mark.parametrize(
    "headers", [BEARER, {"Authorization": "bearer old-key"}, {"X-API-Key": "old-key"}]
)
def test_every_configured_key_works_in_both_header_forms(client: TestClient, headers: dict) -> None:
    resp = client.get("/v1/models", headers=headers)
    assert resp.status_code == 200
    assert resp.json()["data"] == [{"id": "tool", "object": "model", "owned_by": "tool"}]


def test_classify_one_text_and_a_list(client: TestClient) -> None:
    one = client.post("/v1/classify", json={"input": "a good movie"}, headers=BEARER).json()
    assert [d["index"] for d in one["data"]] == [0]
    many = client.post("/v1/classify", json={"input": ["good", "bad", "ok"]}, headers=BEARER)
    data = many.json()["data"]
    assert [d["index"] for d in data] == [0, 1, 2]
    assert all(set(d["scores"]) == {"negative", "neutral", "positive"} for d in data)
    assert all(d["label"] in d["scores"] for d in data)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"input": ""}, 400, "input[0] is empty"),
        ({"input": []}, 400, "at least one text"),
        ({"input": ["a"] * 5}, 400, "input holds 5 texts; at most TOOL_MAX_BATCH=4"),
        ({"input": ["ok", "x" * 4097]}, 400,
         "input[1] has 4097 characters; at most TOOL_MAX_CHARS=4096"),
        ({"input": 3}, 422, None),
        ({"input": [1, 2]}, 422, None),
        ({"text": "a"}, 422, None),
        ({"input": "a", "extra": 1}, 422, None),
    ],
)
def test_bad_bodies_are_client_errors(
    client: TestClient, body: object, status: int, message: str | None
) -> None:
    resp = client.post("/v1/classify", json=body, headers=BEARER)
    assert resp.status_code == status, resp.text
    if message:
        assert message in resp.json()["error"]["message"]


JSON = {**BEARER, "content-type": "application/json"}


def assert_openai_error(resp: httpx.Response, status: int, message: str) -> dict:
    """resp is an error of that status in OpenAI's shape whose message holds `message`."""
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == status
    assert message in error["message"], error["message"]
    return error


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{nope", "the body is not valid JSON: Expecting property name"),
        (b'{"input": NaN}', "NaN is not a JSON number"),
        (b'{"input": Infinity}', "Infinity is not a JSON number"),
        (b'{"input": ["a"], "x": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"input": 1e400}', "the number 1e400 is beyond the float range"),
        (b'{"input": [-1.5e999]}', "the number -1.5e999 is beyond the float range"),
        (b'{"input": 1' + b"0" * 5000 + b"}", "an integer has too many digits"),
        (b"[" * 100_000, "nested too deeply"),
        (b'{"input": "caf\xe9"}', "not UTF-8"),
    ],
)
def test_bodies_that_are_not_strict_json_are_400_naming_the_problem(
    client: TestClient, raw: bytes, message: str
) -> None:
    resp = client.post("/v1/classify", content=raw, headers=JSON)
    error = assert_openai_error(resp, 400, message)
    assert error["type"] == "invalid_request_error" and len(error["message"]) < 200


@pytest.mark.parametrize(
    "body",
    [{"input": [1] * 60_000}, {"input": [["x"]] * 25_000}, {"input": "a", "k" * 50_000: 1},
     {"input": "a", **{f"extra{i}": i for i in range(8_000)}}],
)
def test_validation_errors_are_few_and_never_echo_the_input(client: TestClient, body: dict) -> None:
    resp = client.post("/v1/classify", json=body, headers=BEARER)
    error = assert_openai_error(resp, 422, "invalid request body: ")
    assert len(resp.content) < 1000 and error["message"].count(";") <= 2
    assert "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk" not in error["message"]
    assert error["param"] and error["type"] == "invalid_request_error"


def test_keyless_requests_are_401_before_their_body_is_looked_at(client: TestClient) -> None:
    for raw in (b"{nope", b'{"input": NaN}', b"x" * 5_000_000):
        resp = client.post("/v1/classify", content=raw, headers={"content-type": "text/plain"})
        assert_openai_error(resp, 401, "missing or invalid API key")
        assert resp.headers["connection"] == "close"  # the body is not read


def test_sizes_and_types_are_checked_from_the_headers(client: TestClient) -> None:
    # TOOL_MAX_BATCH=4 texts of TOOL_MAX_CHARS=4096: 4 * (12 * 4096 + 8) + 1024 bytes at most,
    # enough for the longest texts with every character escaped.
    limit = 4 * (12 * 4096 + 8) + 1024
    largest = b'{"input": [' + b",".join([b'"' + b"\\ud83d\\ude00" * 4096 + b'"'] * 4) + b"]}"
    largest += b" " * (limit - len(largest))
    ok = client.post("/v1/classify", content=largest, headers=JSON)
    assert ok.status_code == 200 and len(ok.json()["data"]) == 4
    over = client.post("/v1/classify", content=largest + b" ", headers=JSON)
    assert_openai_error(over, 413, f"at most {limit} bytes (from TOOL_MAX_BATCH")
    assert over.headers["connection"] == "close"
    plain = client.post("/v1/classify", content=b"x" * 100_000, headers={**BEARER,
                        "content-type": "text/plain"})
    error = assert_openai_error(plain, 415, "Content-Type: 'text/plain'")
    assert "xxxx" not in error["message"]
    models = client.request("GET", "/v1/models", content=b"{}", headers=JSON)
    assert_openai_error(models, 413, "this route takes no body")


def test_unknown_routes_and_methods_answer_in_openai_shape(client: TestClient) -> None:
    assert_openai_error(client.get("/v1/nope", headers=BEARER), 404, "no such route")
    assert_openai_error(client.get("/nope"), 404, "no such route")
    assert client.get("/v1/nope").status_code == 401  # the key first, even for no route
    wrong = client.get("/v1/classify", headers=BEARER)
    assert_openai_error(wrong, 405, "method GET is not allowed on this route; allowed: POST")
    assert wrong.headers["allow"] == "POST"


@pytest.mark.parametrize("path", ["/livez", "/healthz"])
def test_health_routes_answer_head(client: TestClient, path: str) -> None:
    resp = client.head(path)
    assert resp.status_code == 200 and resp.content == b""


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_undeployed_chat_routes_are_404_naming_the_mode(client: TestClient, path: str) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "prompt": "hi"}
    resp = client.post(path, json=body, headers=BEARER)
    assert resp.status_code == 404
    assert "DEPLOY_MODE=chat or both" in resp.json()["error"]["message"]
    # Without a key the route says nothing about the deployment.
    assert client.post(path, json=body).status_code == 401


def test_a_lone_surrogate_fails_only_its_own_request(client: TestClient) -> None:
    # Sent raw: the escaped pair-less surrogate reaches the app as a str it cannot tokenize.
    raw = b'{"input": "bad \\udc00 text"}'
    resp = client.post("/v1/classify", content=raw, headers={**BEARER,
                       "content-type": "application/json"})
    assert resp.status_code == 400 and "lone surrogate" in resp.text
    assert client.post("/v1/classify", json={"input": "fine"}, headers=BEARER).status_code == 200


@pytest.mark.parametrize("body", [{}, {"messages": "nope"}, {"prompt": 3}])
def test_undeployed_route_is_404_before_the_body_is_checked(client: TestClient, body: dict) -> None:
    for path in ("/v1/chat/completions", "/v1/completions"):
        resp = client.post(path, json=body, headers=BEARER)
        assert resp.status_code == 404, resp.text
        assert "not deployed" in resp.json()["error"]["message"]


def test_chat_bodies_go_on_as_sent_with_the_default_model_added() -> None:
    named = b'{ "model" : "mine", "prompt": [1.0, "2"], "x": {"y": 1e-3}}'
    body = CompletionRequest.model_validate(json.loads(named))
    assert with_model(named, body, "chat") is named  # untouched, bytes and all
    bare = b' \n{"prompt": "hi", "stream": true}'
    forwarded = with_model(bare, CompletionRequest.model_validate(json.loads(bare)), "chat")
    assert json.loads(forwarded) == {"model": "chat", "prompt": "hi", "stream": True}
    for empty in (b'{"model": null, "prompt": "hi"}', b'{"model": "", "prompt": "hi"}'):
        out = with_model(empty, CompletionRequest.model_validate(json.loads(empty)), "chat")
        assert json.loads(out) == {"model": "chat", "prompt": "hi"}


def test_a_crash_is_500_in_openai_shape(tiny_model_dir: Path) -> None:
    settings = load_settings({"TEXT_API_KEY": KEYS, "DEPLOY_MODE": "tool",
                              "TOOL_MODEL_PATH": str(tiny_model_dir)})
    app = create_app(settings, handle_signals=False)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as crashing:
        resp = crashing.get("/boom")
    error = assert_openai_error(resp, 500, "internal server error")
    assert error["type"] == "server_error" and "a bug" not in resp.text
