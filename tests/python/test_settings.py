"""src/config/settings.py: defaults, validation errors that name the variable, API keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.config.settings import SettingsError, load_settings

KEY = {"TEXT_API_KEY": "k1"}


def test_defaults_follow_the_contracts() -> None:
    s = load_settings(KEY)
    assert (s.deploy_mode, s.engine, s.chat_engine_port) == ("both", "vllm", 8001)
    assert (s.chat_model_path, s.tool_model_path) == ("/opt/models/chat", "/opt/models/tool")
    assert (s.shutdown_grace_s, s.engine_stop_timeout, s.max_concurrent_connections) == (5, 3, 64)
    assert s.tool_batch_wait_ms == 2 and s.chat_gpu_frac is None and s.chat_engine_cmd == ()
    assert s.served_model_name == "chat"
    assert (s.chat_max_body_bytes, s.max_header_bytes) == (1 << 20, 32 << 10)
    assert (s.header_timeout_s, s.body_timeout_s) == (10, 30)


def test_classify_body_limit_fits_the_largest_input_escaped() -> None:
    s = load_settings({**KEY, "TOOL_MAX_BATCH": "2", "TOOL_MAX_CHARS": "3"})
    largest = json.dumps({"input": ["\U0001f600" * 3] * 2}, separators=(", ", ": "))
    assert len(largest) <= s.tool_max_body_bytes == 2 * (12 * 3 + 8) + 1024


@pytest.mark.parametrize("keys", ["caf\u00e9", "ok,tab\there", "nul\x00", "ok,\u200bzero-width"])
def test_keys_must_be_printable_ascii(keys: str) -> None:
    with pytest.raises(SettingsError, match="not printable ASCII") as caught:
        load_settings({"TEXT_API_KEY": keys})
    assert "caf" not in str(caught.value) and "here" not in str(caught.value)


def test_printable_ascii_keys_with_punctuation_are_kept() -> None:
    assert load_settings({"TEXT_API_KEY": "a-b_c.d~!@#$%^&*()"}).api_keys == ("a-b_c.d~!@#$%^&*()",)


def test_served_model_name_defaults_to_chat_model() -> None:
    assert load_settings({**KEY, "CHAT_MODEL": "org/m"}).served_model_name == "org/m"
    env = {**KEY, "CHAT_MODEL": "org/m", "SERVED_MODEL_NAME": "alias"}
    assert load_settings(env).served_model_name == "alias"


def test_model_directory_from_name_only_when_it_is_a_directory(tmp_path: Path) -> None:
    assert load_settings({**KEY, "TOOL_MODEL": str(tmp_path)}).tool_model_path == str(tmp_path)
    s = load_settings({**KEY, "TOOL_MODEL": "org/classifier"})
    assert (s.tool_model_path, s.tool_model_name) == ("/opt/models/tool", "org/classifier")
    env = {**KEY, "TOOL_MODEL": str(tmp_path), "TOOL_MODEL_PATH": "/x"}
    assert load_settings(env).tool_model_path == "/x"


def test_several_keys_from_variable_and_file(tmp_path: Path) -> None:
    assert load_settings({"TEXT_API_KEY": " a, b ,,c "}).api_keys == ("a", "b", "c")
    key_file = tmp_path / "keys"
    key_file.write_text("old\nnew\n")
    assert load_settings({"TEXT_API_KEY_FILE": str(key_file)}).api_keys == ("old", "new")


def test_keys_never_show_in_repr() -> None:
    s = load_settings({"TEXT_API_KEY": "sekrit-value"})
    assert "sekrit-value" not in repr(s) and "sekrit-value" not in str(s)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no API key: TEXT_API_KEY is empty or unset"),
        ({"TEXT_API_KEY": " , "}, "no API key"),
        ({"TEXT_API_KEY": "a", "TEXT_API_KEY_FILE": "/f"}, "both set; set only one"),
        ({"TEXT_API_KEY_FILE": "/nonexistent/keys"}, "'/nonexistent/keys' cannot be read"),
        ({**KEY, "DEPLOY_MODE": "all"}, "DEPLOY_MODE='all' is not valid; valid: chat, tool, both"),
        ({**KEY, "ENGINE": "tgi"}, "ENGINE='tgi' is not valid; valid: vllm, trt"),
        ({**KEY, "CHAT_GPU_FRAC": "1.5"}, "CHAT_GPU_FRAC='1.5' is not valid; expected a number"),
        ({**KEY, "MAX_CONCURRENT_CONNECTIONS": "many"}, "MAX_CONCURRENT_CONNECTIONS='many'"),
        ({**KEY, "TOOL_MAX_BATCH": "0"}, "TOOL_MAX_BATCH='0' is not valid; expected an integer"),
        ({**KEY, "SHUTDOWN_GRACE_S": "nan"}, "SHUTDOWN_GRACE_S='nan' is not valid"),
        ({**KEY, "BODY_TIMEOUT_S": "inf"}, "BODY_TIMEOUT_S='inf' is not valid"),
        ({**KEY, "HEADER_TIMEOUT_S": "0"}, "HEADER_TIMEOUT_S='0' is not valid"),
        ({**KEY, "MAX_HEADER_BYTES": "100"}, "MAX_HEADER_BYTES='100' is not valid"),
        ({**KEY, "CHAT_MAX_BODY_BYTES": "1M"}, "CHAT_MAX_BODY_BYTES='1M' is not valid"),
        ({**KEY, "KV_DTYPE": "int3"}, "KV_DTYPE='int3' is not valid; valid: auto, fp8"),
        ({**KEY, "CHAT_QUANTIZATION": "awq; rm"}, "CHAT_QUANTIZATION='awq; rm' is not valid"),
        ({**KEY, "CHAT_ENGINE_CMD": "python 'x"}, "CHAT_ENGINE_CMD=\"python 'x\" cannot be split"),
        ({**KEY, "PORT": "8001"}, "CHAT_ENGINE_PORT=8001 equals PORT"),
        ({**KEY, "CHAT_HEALTH_FAILURES": "-1"}, "CHAT_HEALTH_FAILURES='-1' is not valid"),
        ({**KEY, "VLLM_DEVICE": "gpu"}, "VLLM_DEVICE='gpu' is not valid; valid: cuda, cpu"),
        ({**KEY, "CHAT_DTYPE": "fp4"}, "CHAT_DTYPE='fp4' is not valid; valid: auto, half"),
        ({**KEY, "CHAT_ENFORCE_EAGER": "yes"}, "CHAT_ENFORCE_EAGER='yes' is not valid; valid: 0"),
        ({**KEY, "CHAT_KV_CACHE_BYTES": "2GB"}, "CHAT_KV_CACHE_BYTES='2GB' is not valid"),
        ({**KEY, "CHAT_KV_CACHE_BYTES": "1.5G"}, "K, M, G, T (powers of 1024, whole numbers)"),
        ({**KEY, "CHAT_KV_CACHE_BYTES": "0"}, "expected a byte count above 0"),
        ({**KEY, "CHAT_KV_CACHE_BYTES": "0.0g"}, "expected a byte count above 0"),
        ({**KEY, "CHAT_KV_CACHE_BYTES": "\uff12G"}, "CHAT_KV_CACHE_BYTES='\uff12G' is not valid"),
        ({**KEY, "VLLM_DEVICE": "cpu", "CHAT_GPU_FRAC": "0.7"},
         "CHAT_GPU_FRAC='0.7' is a share of GPU memory, and this image runs vLLM on the CPU"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    assert message in str(err.value)


@pytest.mark.parametrize("value", ["65536", "64M", "2G", "1.5g", "250m", "1T"])
def test_kv_cache_bytes_take_vllm_forms(value: str) -> None:
    assert load_settings({**KEY, "CHAT_KV_CACHE_BYTES": value}).chat_kv_cache_bytes == value


def test_cpu_device_and_its_switches() -> None:
    s = load_settings({**KEY, "VLLM_DEVICE": "cpu", "CHAT_ENFORCE_EAGER": "1",
                       "CHAT_DTYPE": "bfloat16"})
    assert (s.vllm_device, s.chat_enforce_eager, s.chat_dtype) == ("cpu", True, "bfloat16")
    s = load_settings(KEY)
    assert (s.vllm_device, s.chat_enforce_eager, s.chat_dtype) == ("cuda", False, None)


def test_key_file_error_does_not_leak_the_inline_key() -> None:
    with pytest.raises(SettingsError) as err:
        load_settings({"TEXT_API_KEY": "inline-secret", "TEXT_API_KEY_FILE": "/f"})
    assert "inline-secret" not in str(err.value)


def test_port_clash_ignored_without_chat() -> None:
    assert load_settings({**KEY, "PORT": "8001", "DEPLOY_MODE": "tool"}).deploy_mode == "tool"


def test_a_blank_inline_key_beside_a_key_file_is_ignored(tmp_path: Path) -> None:
    # As lifecycle_require_api_key does: TEXT_API_KEY of blanks and commas counts as unset.
    key_file = tmp_path / "keys"
    key_file.write_text("k\n")
    env = {"TEXT_API_KEY": " , ", "TEXT_API_KEY_FILE": str(key_file)}
    assert load_settings(env).api_keys == ("k",)


def test_chat_health_failures_default_and_off() -> None:
    assert load_settings(KEY).chat_health_failures == 3
    assert load_settings({**KEY, "CHAT_HEALTH_FAILURES": "0"}).chat_health_failures == 0


def test_generation_check_on_by_default_with_minutes_to_answer() -> None:
    s = load_settings(KEY)
    assert (s.chat_generation_check, s.chat_generation_check_timeout_s) == (True, 120)
    env = {**KEY, "CHAT_GENERATION_CHECK": " 0 ", "CHAT_GENERATION_CHECK_TIMEOUT_S": "2.5"}
    s = load_settings(env)
    assert (s.chat_generation_check, s.chat_generation_check_timeout_s) == (False, 2.5)
    assert load_settings({**KEY, "CHAT_GENERATION_CHECK": "1"}).chat_generation_check is True


@pytest.mark.parametrize(
    ("env", "message"),
    [({"CHAT_GENERATION_CHECK": "yes"}, "CHAT_GENERATION_CHECK='yes' is not valid; valid: 0, 1"),
     ({"CHAT_GENERATION_CHECK_TIMEOUT_S": "0"},
      "CHAT_GENERATION_CHECK_TIMEOUT_S='0' is not valid; expected a number >= 0.1")],
)
def test_generation_check_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({**KEY, **env})


def test_metrics_settings(tmp_path: Path) -> None:
    s = load_settings(KEY)
    assert s.metrics_require_key is False and s.metrics_multiproc_dir is None
    s = load_settings({**KEY, "METRICS_REQUIRE_KEY": "1",
                       "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert s.metrics_require_key is True and s.metrics_multiproc_dir == str(tmp_path)
    with pytest.raises(SettingsError, match=r"^METRICS_REQUIRE_KEY='yes' is not valid; valid: 0"):
        load_settings({**KEY, "METRICS_REQUIRE_KEY": "yes"})
    missing = tmp_path / "gone"
    with pytest.raises(SettingsError, match=f"^PROMETHEUS_MULTIPROC_DIR='{missing}' is not a dir"):
        load_settings({**KEY, "PROMETHEUS_MULTIPROC_DIR": str(missing)})


def test_gateway_workers_share_out_the_bound_in_worker_processes_only(tmp_path: Path) -> None:
    assert load_settings(KEY).gateway_workers == 1
    chat = {**KEY, "DEPLOY_MODE": "chat", "GATEWAY_WORKERS": "3",
            "MAX_CONCURRENT_CONNECTIONS": "64"}
    assert load_settings(chat).max_in_flight_here == 64  # the supervisor: no share of its own
    board = tmp_path / "board"
    board.write_bytes(b"\0\0")
    worker = load_settings({**chat, "GATEWAY_BOARD": str(board)})
    assert (worker.gateway_board, worker.max_in_flight_here) == (str(board), 21)


@pytest.mark.parametrize(
    ("env", "message"),
    [({"GATEWAY_WORKERS": "0"},
      "GATEWAY_WORKERS='0' is not valid; expected an integer between 1 and 64"),
     ({"GATEWAY_WORKERS": "two"}, "GATEWAY_WORKERS='two' is not valid"),
     ({"GATEWAY_WORKERS": "65"}, "GATEWAY_WORKERS='65' is not valid"),
     ({"GATEWAY_WORKERS": "2", "DEPLOY_MODE": "both"},
      "GATEWAY_WORKERS=2 with DEPLOY_MODE=both: several gateway workers serve the chat engine "
      "only (the tool model is loaded in one process); set DEPLOY_MODE=chat, or "
      "GATEWAY_WORKERS=1 (tool-only scales with UVICORN_WORKERS)"),
     ({"GATEWAY_WORKERS": "2", "DEPLOY_MODE": "tool"}, "GATEWAY_WORKERS=2 with DEPLOY_MODE=tool"),
     ({"GATEWAY_WORKERS": "8", "DEPLOY_MODE": "chat", "MAX_CONCURRENT_CONNECTIONS": "4"},
      "GATEWAY_WORKERS=8 is above MAX_CONCURRENT_CONNECTIONS=4: each worker admits an equal "
      "share of it; raise MAX_CONCURRENT_CONNECTIONS or lower GATEWAY_WORKERS"),
     ({"GATEWAY_BOARD": "/nonexistent/board"}, "GATEWAY_BOARD='/nonexistent/board' is not a "
      "file; it is set by the gateway's supervisor for its workers only: unset it")],
)
def test_bad_gateway_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings({**KEY, **env})
    assert str(err.value).startswith(message), err.value
