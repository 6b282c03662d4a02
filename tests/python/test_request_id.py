"""Request ids (src/request_id.py, src/observe.py): one id per /v1 request, the same in the
response header, the access log, the app's log lines and the chat engine's request."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from conftest import TEST_KEY, AppProcess, served_app, wait_until
from starlette.testclient import TestClient

from src import request_id
from src.config.settings import Settings
from src.server import create_app

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """The app (chat) over the fake engine; a whole answer takes 1 s, a stream 3 chunks."""
    log = tmp_path_factory.mktemp("request-id") / "server.log"
    with served_app(log, "--chunks 3 --answer-after 1") as app:
        yield app


def access_lines(app: AppProcess, rid: str) -> list[str]:
    """The lines of the app's output that end with this request id."""
    return [line for line in app.output().splitlines() if line.endswith(f" request_id={rid}")]


def engine_ids(app: AppProcess) -> list[str | None]:
    """The X-Request-Id of each request the fake engine recorded, oldest first."""
    return [r["request_id"] for r in app.engine_stats()["requests"]]


@pytest.mark.parametrize(("sent", "kept"), [
    ("client-id-1.2:3", True),            # sane: kept as it is
    ("", False),                          # empty
    ("two words", False),                 # a space
    ('quote"d', False),                   # a quote
    ("x" * 129, False),                   # too long
    ("line\u2028break", False),           # not ASCII
])
def test_the_id_is_the_same_in_header_access_log_and_engine(
    app: AppProcess, sent: str, kept: bool
) -> None:
    """A sane client id is kept, any other replaced by a new one; either way the answer's
    header, the access log line and the engine's request carry the same id."""
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    headers = {**AUTH, "X-Request-Id": sent.encode("utf-8")}
    with httpx.stream("POST", app.url + "/v1/chat/completions", json=body, headers=headers,
                      timeout=10) as resp:
        assert resp.status_code == 200
        resp.read()
    rid = resp.headers["x-request-id"]
    assert rid == sent if kept else HEX32.fullmatch(rid)
    assert engine_ids(app)[-1] == rid
    wait_until(lambda: access_lines(app, rid) != [], 5, "the access log line")
    (line,) = access_lines(app, rid)
    assert '"POST /v1/chat/completions HTTP/1.1" 200' in line


def test_every_answer_gets_its_own_new_id_and_a_refusal_has_one_too(app: AppProcess) -> None:
    ids = {httpx.get(app.url + "/v1/models", headers=AUTH, timeout=10).headers["x-request-id"]
           for _ in range(3)}
    assert len(ids) == 3 and all(HEX32.fullmatch(rid) for rid in ids)
    refused = httpx.get(app.url + "/v1/models", headers={"X-Request-Id": "no-key-7"}, timeout=10)
    assert refused.status_code == 401 and refused.headers["x-request-id"] == "no-key-7"
    wait_until(lambda: access_lines(app, "no-key-7") != [], 5, "the access log line")
    assert '"GET /v1/models HTTP/1.1" 401' in access_lines(app, "no-key-7")[0]
    health = httpx.get(app.url + "/healthz", timeout=10)
    assert "x-request-id" not in health.headers  # ids are for /v1 requests


def test_the_apps_own_log_lines_about_a_request_carry_its_id(app: AppProcess) -> None:
    """A client that leaves a whole answer early: the app's line about it names the id."""
    with contextlib.suppress(httpx.ReadTimeout):
        httpx.post(app.url + "/v1/completions", json={"prompt": "x"}, timeout=0.3,
                   headers={**AUTH, "X-Request-Id": "leaver-42"})
    wait_until(lambda: any("client disconnected" in line for line in access_lines(app,
               "leaver-42")), 10, "the app's line about the disconnect")
    assert engine_ids(app)[-1] == "leaver-42"
    lines = app.output().splitlines()
    (about,) = [line for line in lines if "client disconnected" in line]
    assert about.startswith("[server] ") and about.endswith(" request_id=leaver-42")
    # lines logged outside any request carry no id
    assert not any("request_id=" in line for line in lines if "chat engine ready" in line)


def test_from_headers_keeps_only_sane_ids() -> None:
    take: Callable[[list[tuple[bytes, bytes]]], str] = request_id.from_headers
    assert take([(b"x-request-id", b"abc-DEF_1.2:3/4+5=@")]) == "abc-DEF_1.2:3/4+5=@"
    assert take([(b"x-request-id", b"a" * 128)]) == "a" * 128
    for bad in (b"", b"a" * 129, b"a b", b"a\r\nb", b"\xff", b"<script>"):
        assert HEX32.fullmatch(take([(b"x-request-id", bad)])), bad
    assert HEX32.fullmatch(take([]))


def test_in_process_answers_carry_the_id() -> None:
    client = TestClient(create_app(Settings(deploy_mode="tool", api_keys=("k",)), False))
    resp = client.get("/v1/models", headers={"X-API-Key": "k", "X-Request-Id": "in-proc-1"})
    assert resp.status_code == 200 and resp.headers["x-request-id"] == "in-proc-1"
    assert request_id.current.get() is None  # the request's context did not leak out
