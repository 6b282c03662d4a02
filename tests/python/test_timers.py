"""src/config/timers.py: the start and stop timers agree, and the bootstrap gets them resolved."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyhelpers.manifest import build_manifest, list_files, write_manifest
from src.config.parse import SettingsError
from src.config.settings import load_settings
from src.config.timers import (
    DOCKER_STOP_TIMEOUT_S,
    EXIT_MARGIN_S,
    HEALTHCHECKS,
    load_timers,
)

ROOT = Path(__file__).resolve().parents[2]
TIMER_NAMES = ("WARMUP_MAX_WAIT", "SHUTDOWN_GRACE_S", "ENGINE_STOP_TIMEOUT", "SERVER_STOP_TIMEOUT")


@pytest.mark.parametrize("stack", HEALTHCHECKS)
def test_defaults_stop_within_docker_stop_and_warmup_gives_up_with_the_healthcheck(
    stack: str,
) -> None:
    timers = load_timers({}, stack)
    check = HEALTHCHECKS[stack]
    assert timers.server_stop_timeout_s == \
        timers.shutdown_grace_s + timers.engine_stop_timeout_s + EXIT_MARGIN_S
    assert timers.server_stop_timeout_s < DOCKER_STOP_TIMEOUT_S, "docker stop would kill first"
    assert timers.warmup_max_wait_s == check.give_up_s == \
        check.start_period_s + check.interval_s * check.retries
    assert check.start_period_s > 0 and check.timeout_s < check.interval_s


def test_the_app_drains_with_the_same_timers() -> None:
    env = {"TEXT_API_KEY": "k", "SHUTDOWN_GRACE_S": "7.5"}
    settings, timers = load_settings(env), load_timers(env, "vllm")
    assert settings.shutdown_grace_s == timers.shutdown_grace_s == 7.5
    assert settings.engine_stop_timeout == timers.engine_stop_timeout_s


def test_a_longer_drain_moves_the_last_resort_kill_with_it() -> None:
    timers = load_timers({"SHUTDOWN_GRACE_S": "120", "ENGINE_STOP_TIMEOUT": "20"}, "trt")
    assert timers.server_stop_timeout_s == 141
    assert load_timers({"SHUTDOWN_GRACE_S": "120", "SERVER_STOP_TIMEOUT": "150"},
                       "trt").server_stop_timeout_s == 150


def test_a_last_resort_kill_that_would_cut_the_stop_is_refused() -> None:
    with pytest.raises(SettingsError) as err:
        load_timers({"SHUTDOWN_GRACE_S": "30", "SERVER_STOP_TIMEOUT": "20"}, "vllm")
    assert str(err.value) == (
        "SERVER_STOP_TIMEOUT='20' would kill the server before its stop ends: SHUTDOWN_GRACE_S "
        "30 + ENGINE_STOP_TIMEOUT 3 + 1 s to exit = 34 s; raise it to at least 34, or unset it "
        "(it is then that sum)")
    assert load_timers({"SERVER_STOP_TIMEOUT": "9"}, "tool").server_stop_timeout_s == 9


@pytest.mark.parametrize(
    ("name", "value"),
    [("WARMUP_MAX_WAIT", "0"), ("WARMUP_MAX_WAIT", "abc"), ("WARMUP_MAX_WAIT", "1e7"),
     ("SERVER_STOP_TIMEOUT", "-1"), ("SERVER_STOP_TIMEOUT", "5s"), ("SHUTDOWN_GRACE_S", "nan"),
     ("ENGINE_STOP_TIMEOUT", "-0.5")],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name}='{value}' is not valid; expected a number"):
        load_timers({name: value}, "vllm")


def run_entry(env: dict[str, str], stack: str) -> subprocess.CompletedProcess[bytes]:
    """`python3 -m src.config --stack STACK` as the bootstrap runs it."""
    return subprocess.run([sys.executable, "-m", "src.config", "--stack", stack],
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **env},
                          capture_output=True, timeout=60, check=False)


def test_the_entry_point_prints_name_source_value_fields_for_the_shell(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    write_manifest(tmp_path, build_manifest(tmp_path, list_files(tmp_path), {"repo_id": "t/m"}))
    proc = run_entry({"SHUTDOWN_GRACE_S": "12", "DEPLOY_MODE": "tool",
                      "TOOL_MODEL_PATH": str(tmp_path)}, "tool")
    assert proc.returncode == 0 and proc.stderr == b""
    fields = proc.stdout.split(b"\0")
    assert fields[-1] == b""
    records = {fields[i].decode(): (fields[i + 1].decode(), fields[i + 2].decode())
               for i in range(0, len(fields) - 1, 3)}
    assert {name: records[name] for name in TIMER_NAMES} == {
        "WARMUP_MAX_WAIT": ("default", "120"), "SHUTDOWN_GRACE_S": ("user", "12"),
        "ENGINE_STOP_TIMEOUT": ("default", "3"), "SERVER_STOP_TIMEOUT": ("derived", "16")}


def test_the_entry_point_refuses_a_bad_value_in_one_line_and_prints_nothing_to_export() -> None:
    proc = run_entry({"SERVER_STOP_TIMEOUT": "2"}, "vllm")
    assert proc.returncode == 1 and proc.stdout == b""
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[vllm] ✗ SERVER_STOP_TIMEOUT='2' would kill")
