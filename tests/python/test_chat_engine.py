"""src/engines/chat.py: the engine command line (vLLM, trtllm-serve), the child's environment,
and the readiness gate against tests/apps/fake_openai.py as a real child."""

from __future__ import annotations

import asyncio
import itertools
import logging
import shlex
import sys

import pytest
from conftest import FAKE_OPENAI, free_port
from prometheus_client import REGISTRY

from src.config.settings import SettingsError, load_settings
from src.engines.chat import ChatEngine, build_engine_argv, child_env
from src.health import EngineState

FULL = {
    "TEXT_API_KEY": "secret-key", "CHAT_MODEL": "org/chat", "CHAT_MODEL_PATH": "/opt/models/chat",
    "CHAT_ENGINE_PORT": "8101", "CHAT_GPU_FRAC": "0.6", "TRT_KV_FREE_GPU_FRAC": "0.8",
    "CHAT_MAX_LEN": "4096", "CHAT_QUANTIZATION": "awq", "KV_DTYPE": "fp8", "MAX_NUM_SEQS": "32",
    "MAX_NUM_BATCHED_TOKENS": "8192", "TENSOR_PARALLEL_SIZE": "2",
}


def pairs(argv: list[str]) -> dict[str, str]:
    """The --flag value pairs of an argv."""
    return {a: b for a, b in itertools.pairwise(argv) if a.startswith("--")}


def test_vllm_argv_carries_every_setting_and_binds_loopback() -> None:
    argv = build_engine_argv(load_settings({**FULL, "ENGINE": "vllm"}))
    assert argv[:3] == ["vllm", "serve", "/opt/models/chat"]
    assert pairs(argv) == {
        "--host": "127.0.0.1", "--port": "8101", "--served-model-name": "org/chat",
        "--tensor-parallel-size": "2", "--gpu-memory-utilization": "0.6",
        "--max-model-len": "4096", "--quantization": "awq", "--kv-cache-dtype": "fp8",
        "--max-num-seqs": "32", "--max-num-batched-tokens": "8192",
    }
    assert "secret-key" not in " ".join(argv)


def test_vllm_cpu_argv_sizes_the_kv_cache_in_bytes_and_runs_eager() -> None:
    env = {"TEXT_API_KEY": "k", "ENGINE": "vllm", "VLLM_DEVICE": "cpu", "CHAT_KV_CACHE_BYTES": "2G",
           "CHAT_ENFORCE_EAGER": "1", "CHAT_DTYPE": "bfloat16", "CHAT_MAX_LEN": "256"}
    argv = build_engine_argv(load_settings(env))
    assert "--enforce-eager" in argv
    assert pairs(argv) == {
        "--host": "127.0.0.1", "--port": "8001", "--served-model-name": "chat",
        "--tensor-parallel-size": "1", "--kv-cache-memory-bytes": "2G", "--dtype": "bfloat16",
        "--max-model-len": "256",
    }
    argv = build_engine_argv(load_settings({**env, "CHAT_ENFORCE_EAGER": "0"}))
    assert "--enforce-eager" not in argv


def test_trt_argv_serves_the_engine_with_the_tokenizer() -> None:
    env = {**FULL, "ENGINE": "trt", "TRT_ENGINE_DIR": "/opt/engines/trt-chat"}
    argv = build_engine_argv(load_settings(env))
    assert argv[:2] == ["trtllm-serve", "/opt/engines/trt-chat"]
    assert pairs(argv) == {
        "--backend": "tensorrt", "--host": "127.0.0.1", "--port": "8101",
        "--tokenizer": "/opt/models/chat", "--served_model_name": "org/chat", "--tp_size": "2",
        "--kv_cache_free_gpu_memory_fraction": "0.8", "--max_seq_len": "4096",
        "--max_batch_size": "32", "--max_num_tokens": "8192",
    }
    # vLLM-only knobs never reach trtllm-serve (they are baked into a pre-built engine).
    assert not {"--quantization", "--kv-cache-dtype", "--gpu-memory-utilization"} & set(argv)
    assert "secret-key" not in " ".join(argv)


def test_unset_options_are_left_to_the_engine() -> None:
    argv = build_engine_argv(load_settings({"TEXT_API_KEY": "k", "ENGINE": "vllm"}))
    assert argv == ["vllm", "serve", "/opt/models/chat", "--host", "127.0.0.1", "--port", "8001",
                    "--served-model-name", "chat", "--tensor-parallel-size", "1"]


def test_attention_backend_is_a_vllm_flag_never_for_trt() -> None:
    env = {**FULL, "CHAT_ATTENTION_BACKEND": "FLASHINFER"}
    vllm = build_engine_argv(load_settings({**env, "ENGINE": "vllm"}))
    assert pairs(vllm)["--attention-config.backend"] == "FLASHINFER"
    trt = build_engine_argv(load_settings({**env, "ENGINE": "trt"}))
    assert not any("attention" in a for a in trt)


def test_attention_backend_must_be_one_word() -> None:
    with pytest.raises(SettingsError, match="CHAT_ATTENTION_BACKEND='FLASH ATTN'"):
        load_settings({"TEXT_API_KEY": "k", "CHAT_ATTENTION_BACKEND": "FLASH ATTN"})


def test_chat_engine_cmd_replaces_the_command() -> None:
    cmd = "python3 my_engine.py --port 9000 --name 'a b'"
    argv = build_engine_argv(load_settings({**FULL, "CHAT_ENGINE_CMD": cmd}))
    assert argv == shlex.split(cmd)


def test_child_env_drops_secrets_keeps_the_rest() -> None:
    env = {"TEXT_API_KEY": "a", "TEXT_API_KEY_FILE": "/k", "HF_TOKEN": "h", "PATH": "/bin",
           "CHAT_ENGINE_PORT": "8001", "HF_ENDPOINT": "http://mirror",
           "PROMETHEUS_MULTIPROC_DIR": "/tmp/metrics"}
    assert child_env(env) == {"PATH": "/bin", "CHAT_ENGINE_PORT": "8001",
                              "HF_ENDPOINT": "http://mirror"}


def exits(reason: str) -> float:
    """text_inference_chat_engine_exits_total for one reason (0 before the first)."""
    return REGISTRY.get_sample_value("text_inference_chat_engine_exits_total",
                                     {"reason": reason}) or 0.0


def run_until_exit(env: dict[str, str]) -> tuple[list[EngineState], list[int]]:
    """Start a ChatEngine with env's settings, wait (30 s at most) for it to report an exit,
    stop it; the states it reported and the exit statuses."""
    settings = load_settings({"TEXT_API_KEY": "k", "DEPLOY_MODE": "chat",
                              "ENGINE_STOP_TIMEOUT": "5", **env})
    states: list[EngineState] = []
    codes: list[int] = []

    async def run() -> None:
        exited = asyncio.Event()

        def on_exit(code: int) -> None:
            codes.append(code)
            exited.set()

        engine = ChatEngine(settings, states.append, on_exit)
        await engine.start()
        try:
            await asyncio.wait_for(exited.wait(), 30)
        finally:
            await engine.stop()

    asyncio.run(run())
    return states, codes


def test_engine_that_cannot_start_is_counted_and_ends_with_127() -> None:
    before = exits("not_started")
    states, codes = run_until_exit({"CHAT_ENGINE_CMD": "/nonexistent/engine --serve"})
    assert states == [EngineState.FAILED] and codes == [127]
    assert exits("not_started") == before + 1


def test_engine_that_cannot_generate_is_failed_never_ready(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    before = exits("generation_check")
    with caplog.at_level(logging.ERROR, logger="src.engines.chat"):
        states, codes = run_until_exit({
            "CHAT_ENGINE_PORT": str(port),
            "CHAT_ENGINE_CMD": f"{sys.executable} {FAKE_OPENAI} --port {port} "
                               "--generation-error 'no kernel for head_dim=16'",
        })
    assert states == [EngineState.FAILED] and codes == [1]
    assert "HTTP 500" in caplog.text and "no kernel for head_dim=16" in caplog.text
    assert exits("generation_check") == before + 1
