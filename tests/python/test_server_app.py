"""src/server.py in-process (tool deploy mode, real tiny model): auth, routes, bodies, health."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from src.config.settings import load_settings
from src.server import create_app

KEYS = "old-key,new-key"
BEARER = {"Authorization": "Bearer new-key"}


@pytest.fixture(scope="module")
def client(tiny_model_dir: Path) -> Iterator[TestClient]:
    """The app in tool mode with the tiny model, ready; limits 4 texts of 50 characters."""
    settings = load_settings({
        "TEXT_API_KEY": KEYS, "DEPLOY_MODE": "tool", "TOOL_MODEL_PATH": str(tiny_model_dir),
        "TOOL_MAX_BATCH": "4", "TOOL_MAX_CHARS": "50",
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
        ({"input": ["ok", "x" * 51]}, 400, "input[1] has 51 characters; at most TOOL_MAX_CHARS=50"),
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


def test_body_that_is_not_json_is_a_client_error(client: TestClient) -> None:
    resp = client.post("/v1/classify", content=b"{nope", headers={**BEARER,
                       "content-type": "application/json"})
    assert resp.status_code == 422
    assert "Traceback" not in resp.text


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
