"""pyhelpers/logs.py and log_setup.py: Python's log lines follow logs.sh's rules, and with
LOG_FORMAT=json every line the served app writes (its own, uvicorn's, the chat engine's) is one
JSON object."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conftest import TEST_KEY, AppProcess

from pyhelpers import log_setup, logs

ROOT = Path(__file__).resolve().parents[2]
LOGS_SH = ROOT / "docker" / "common" / "scripts" / "logs.sh"
# logs.sh's functions and the (level, mark) Python writes the same line with.
FUNCTIONS = {"log_debug": (logging.DEBUG, None), "log_info": (logging.INFO, None),
             "log_success": (logging.INFO, "✓"), "log_warn": (logging.WARNING, None),
             "log_err": (logging.ERROR, None)}
MESSAGE = 'a "quoted" line\twith a tab, ünïcode and a bell \a'
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
HEX32 = re.compile(r"[0-9a-f]{32}")
UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def shell_lines(env: dict[str, str]) -> list[str]:
    """The stderr lines of each logs.sh function (in FUNCTIONS' order; "" when dropped)."""
    script = 'source "$1"; shift; for f in "$@"; do "$f" "[p]" "$MESSAGE" 2>&1; echo "|"; done'
    out = subprocess.run(["bash", "-c", script, "sh", str(LOGS_SH), *FUNCTIONS],
                         env={"PATH": "/usr/bin:/bin", "MESSAGE": MESSAGE, **env},
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return [part.strip("\n") for part in out.split("|")[:-1]]


def comparable(text: str, as_json: bool) -> object:
    """A line as the two must agree on: JSON without its time stamp (checked to be UTC)."""
    if not as_json or not text:
        return text
    obj = json.loads(text)
    assert UTC.fullmatch(obj.pop("ts")), text
    return obj


@pytest.mark.parametrize("level", [None, "debug", "info", "warn", "error", "INFO", "loud"])
@pytest.mark.parametrize("fmt", [None, "json"])
def test_python_writes_what_logs_sh_writes(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str],
                                           level: str | None, fmt: str | None) -> None:
    env = {k: v for k, v in (("LOG_LEVEL", level), ("LOG_FORMAT", fmt)) if v is not None}
    for name in ("LOG_LEVEL", "LOG_FORMAT", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    expected = shell_lines(env)
    for (python_level, mark), shell in zip(FUNCTIONS.values(), expected, strict=True):
        logs.emit(python_level, "[p]", MESSAGE, mark)
        ours = capsys.readouterr().err.strip("\n")
        assert comparable(ours, fmt == "json") == comparable(shell, fmt == "json")
    assert sum(bool(x) for x in expected) == {"debug": 5, "warn": 2, "error": 1}.get(level or "", 4)


def test_the_level_numbers_are_pythons_logging_levels() -> None:
    assert (logs.DEBUG, logs.INFO, logs.WARNING, logs.ERROR, logs.CRITICAL) == (
        logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)


def test_a_record_with_a_source_and_a_traceback_stays_one_json_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    formatter = log_setup.LineFormatter("[server]")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "engine says %s", ("hi",), None)
    record.source, record.prefix = "chat-engine", "[chat-engine]"
    assert json.loads(formatter.format(record)) | {"ts": ""} == {
        "ts": "", "level": "info", "prefix": "chat-engine", "msg": "engine says hi",
        "source": "chat-engine"}
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("x", logging.CRITICAL, __file__, 1, "failed", (), None)
        failed.exc_info = sys.exc_info()
    text = formatter.format(failed)
    assert "\n" not in text
    obj = json.loads(text)
    assert obj["level"] == "error" and obj["prefix"] == "server"
    assert obj["msg"].startswith("failed\nTraceback") and "ValueError: boom" in obj["msg"]


def test_the_apps_setup_takes_libraries_and_warnings_too(tmp_path: Path) -> None:
    script = ("import logging, warnings\n"
              "from src.runtime import setup_logging\n"
              "setup_logging()\n"
              "logging.getLogger('asyncio').error('Task exception was never retrieved')\n"
              "logging.getLogger('httpx').info('HTTP Request: GET')\n"
              "warnings.warn('old API', DeprecationWarning, stacklevel=1)\n")
    proc = subprocess.run([sys.executable, "-W", "always", "-c", script], cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                               "LOG_FORMAT": "json", "LOG_LEVEL": "warn"},
                          capture_output=True, text=True, timeout=60, check=True)
    objects = [json.loads(line) for line in proc.stderr.splitlines()]
    assert [(o["level"], o["prefix"]) for o in objects] == [("error", "server"), ("warn", "server")]
    assert objects[0]["msg"] == "Task exception was never retrieved"
    assert "DeprecationWarning: old API" in objects[1]["msg"]


def test_json_lines_from_the_app_uvicorn_and_the_chat_engine(
        app_process: Callable[..., AppProcess]) -> None:
    app = app_process("--crash-after 3", LOG_FORMAT="json")
    app.wait_ready()
    assert httpx.get(app.url + "/v1/models", headers=AUTH, timeout=5).status_code == 200
    assert app.wait_exit() == 3
    lines = app.output().splitlines()
    objects = [json.loads(line) for line in lines]  # every line: one JSON object
    assert all(UTC.fullmatch(o["ts"]) and
               set(o) <= {"ts", "level", "prefix", "msg", "source", "request_id"} for o in objects)
    by_source = [o for o in objects if o.get("source") == "chat-engine"]
    assert {"level": "info", "prefix": "chat-engine", "msg": "fake engine: simulated crash",
            "source": "chat-engine"} in [{k: v for k, v in o.items() if k != "ts"}
                                         for o in by_source]
    msgs = [o["msg"] for o in objects if o["prefix"] == "server"]
    (access,) = [o for o in objects if "GET /v1/models HTTP/1.1" in o["msg"]]  # uvicorn's
    assert "200" in access["msg"] and HEX32.fullmatch(access["request_id"])  # the id: a field
    assert any(m.startswith("Started server process") for m in msgs)  # uvicorn's own
    assert any("chat engine exited with status 3" in m for m in msgs)  # the app's
    # the app polled the engine's /health (it became ready); httpx's line per request is for
    # LOG_LEVEL=debug only
    assert not any(m.startswith("HTTP Request:") for m in msgs)


def test_log_level_warn_drops_uvicorns_and_the_apps_info_lines(
        app_process: Callable[..., AppProcess]) -> None:
    app = app_process("--crash-after 3", LOG_LEVEL="warn")
    app.wait_ready()
    assert app.wait_exit() == 3
    out = app.output()
    assert "Started server process" not in out and "starting chat engine" not in out
    assert "[server] ✗ " in out and "chat engine exited with status 3" in out
