"""src/config/resolve.py: the settings the bootstrap resolves, their sources and the checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.config.resolve import Resolution, resolve


def records(found: Resolution) -> dict[str, tuple[str, str]]:
    """name -> (source, value) of what was resolved."""
    assert not found.errors, found.errors
    return {name: (source, value) for name, source, value in found.records}


def engine_dir(tmp_path: Path, tp: int = 1, **build: int) -> Path:
    """A TensorRT-LLM engine directory with one rank per tp, config.json and build metadata."""
    for rank in range(tp):
        (tmp_path / f"rank{rank}.engine").write_text("x")
    (tmp_path / "config.json").write_text(json.dumps({
        "build_config": build, "pretrained_config": {
            "mapping": {"tp_size": tp}, "quantization": {"quant_algo": "FP8"}}}))
    (tmp_path / "build_metadata.json").write_text('{"sm_arch": "sm90"}')
    return tmp_path


def test_defaults_come_from_the_apps_definitions_and_never_replace_a_value(tmp_path: Path) -> None:
    found = records(resolve({"CHAT_MODEL": "org/m", "CHAT_ENGINE_PORT": "9001",
                             "CHAT_MODEL_PATH": str(tmp_path)}, "vllm"))
    assert found["SERVED_MODEL_NAME"] == ("default", "org/m")
    assert found["TOOL_MODEL_PATH"] == ("default", "/opt/models/tool")
    assert found["KV_DTYPE"] == ("default", "auto")
    assert "CHAT_ENGINE_PORT" not in found and "CHAT_MODEL_PATH" not in found
    tool = records(resolve({}, "tool"))
    assert "CHAT_MODEL_PATH" not in tool and tool["WARMUP_MAX_WAIT"] == ("default", "120")


def test_the_apps_checks_run_at_bootstrap_without_an_api_key() -> None:
    found = resolve({"PORT": "8001", "DEPLOY_MODE": "chat"}, "vllm")
    assert found.errors == ["CHAT_ENGINE_PORT=8001 equals PORT; the chat engine needs its own "
                            "internal port (default 8001)"]


def test_vllm_model_quantization_and_flashinfer(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"quantization_config": {"quant_method": "awq"}}')
    env = {"DEPLOY_CHAT": "1", "CHAT_MODEL_PATH": str(tmp_path), "GPU_COUNT": "1"}
    found = records(resolve(env, "vllm"))
    assert found["CHAT_MODEL_QUANT"] == ("model config", "awq")
    assert found["FLASHINFER_AVAILABLE"] == ("image", "0")  # not in the test venv
    assert "CHAT_ATTENTION_BACKEND" not in found
    found = records(resolve({**env, "FLASHINFER_AVAILABLE": "1"}, "vllm"))
    assert found["CHAT_ATTENTION_BACKEND"] == ("gpu preset", "FLASHINFER")
    assert "CHAT_ATTENTION_BACKEND" not in records(
        resolve({**env, "FLASHINFER_AVAILABLE": "1", "GPU_COUNT": "0"}, "vllm"))


def test_vllm_a_quantization_that_is_not_one_word_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"quantization_config": {"quant_method": "a b"}}')
    found = resolve({"DEPLOY_CHAT": "1", "CHAT_MODEL_PATH": str(tmp_path)}, "vllm")
    assert "CHAT_MODEL_QUANT" not in records(found)
    assert found.warnings == [f"{tmp_path / 'config.json'} names quantization 'a b', not one "
                              "word; ignored (set CHAT_QUANTIZATION to force one)"]


def test_vllm_tensor_parallel_size_above_the_visible_gpus_is_an_error() -> None:
    found = resolve({"DEPLOY_CHAT": "1", "GPU_COUNT": "2", "TENSOR_PARALLEL_SIZE": "4"}, "vllm")
    assert found.errors == ["TENSOR_PARALLEL_SIZE 4 is more than the 2 visible GPU(s); lower it "
                            "or make more GPUs visible (--gpus, CUDA_VISIBLE_DEVICES)"]


def test_trt_engine_facts_are_read_once_and_bound_the_users_values(tmp_path: Path) -> None:
    env = {"DEPLOY_CHAT": "1", "TRT_ENGINE_DIR": str(engine_dir(tmp_path, 2, max_seq_len=4096,
                                                                max_batch_size=16)),
           "CHAT_GPU_FRAC": "0.70", "MAX_NUM_SEQS": "8"}
    found = records(resolve(env, "trt"))
    assert found["CHAT_MAX_LEN"] == ("engine config", "4096")
    assert found["TENSOR_PARALLEL_SIZE"] == ("engine config", "2")
    assert found["TRT_KV_FREE_GPU_FRAC"] == ("deploy mode", "0.70")
    assert (found["TRT_ENGINE_SM_ARCH"], found["TRT_ENGINE_RANKS"], found["CHAT_MODEL_QUANT"]) == \
        (("engine config", "sm90"), ("engine config", "2"), ("engine config", "FP8"))
    assert "MAX_NUM_SEQS" not in found
    bad = resolve({**env, "MAX_NUM_SEQS": "17", "CHAT_MAX_LEN": "x", "TENSOR_PARALLEL_SIZE": "1"},
                  "trt")
    assert bad.errors == [
        "CHAT_MAX_LEN='x' is not valid; expected an integer >= 16",
    ]
    bad = resolve({**env, "MAX_NUM_SEQS": "17", "TENSOR_PARALLEL_SIZE": "1"}, "trt")
    assert bad.errors == [
        "MAX_NUM_SEQS '17' is not valid for this engine: it was built for at most 16; use a "
        "whole number from 1 to 16 (or unset it)",
        "TENSOR_PARALLEL_SIZE '1' does not match the engine, which was built for 2 rank(s) "
        "(tp_size); unset it (the engine decides)"]


@pytest.mark.parametrize("chat", ["0", "1"])
def test_trt_without_an_engine_or_without_chat_reads_nothing(tmp_path: Path, chat: str) -> None:
    found = records(resolve({"DEPLOY_CHAT": chat, "TRT_ENGINE_DIR": str(tmp_path)}, "trt"))
    assert found["TENSOR_PARALLEL_SIZE"] == ("default", "1")
    assert not {"TRT_ENGINE_RANKS", "CHAT_MAX_LEN"} & set(found)


def test_trt_an_unreadable_engine_config_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{")
    found = resolve({"DEPLOY_CHAT": "1", "TRT_ENGINE_DIR": str(tmp_path)}, "trt")
    assert len(found.errors) == 1
    assert found.errors[0].startswith(f"{tmp_path / 'config.json'}: not a readable engine config")
    assert found.errors[0].endswith("; rebuild the image with a complete engine")
