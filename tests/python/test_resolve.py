"""src/config/resolve.py: the settings the bootstrap resolves, their sources and the checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyhelpers.manifest import build_manifest, list_files, write_manifest
from src.config.resolve import Resolution, resolve


def records(found: Resolution) -> dict[str, tuple[str, str]]:
    """name -> (source, value) of what was resolved."""
    assert not found.errors, found.errors
    return {name: (source, value) for name, source, value in found.records}


def bake(directory: Path, files: dict[str, str] | None = None) -> Path:
    """A directory as a download leaves it: its files (default a config.json), its manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in ({"config.json": "{}"} if files is None else files).items():
        (directory / name).write_text(text)
    write_manifest(directory, build_manifest(directory, list_files(directory),
                                             {"repo_id": "test/model", "revision": "main"}))
    return directory


@pytest.fixture
def baked(tmp_path: Path) -> dict[str, str]:
    """The tool and chat model directories of an image, with their manifests."""
    return {"TOOL_MODEL_PATH": str(bake(tmp_path / "baked tool")),
            "CHAT_MODEL_PATH": str(bake(tmp_path / "baked chat"))}


def engine_dir(tmp_path: Path, tp: int = 1, **build: int) -> Path:
    """A TensorRT-LLM engine directory with one rank per tp, config.json and build metadata."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    for rank in range(tp):
        (tmp_path / f"rank{rank}.engine").write_text("x")
    (tmp_path / "config.json").write_text(json.dumps({
        "build_config": build, "pretrained_config": {
            "mapping": {"tp_size": tp}, "quantization": {"quant_algo": "FP8"}}}))
    (tmp_path / "build_metadata.json").write_text('{"sm_arch": "sm90"}')
    return bake(tmp_path, {})


def test_defaults_come_from_the_apps_definitions_and_never_replace_a_value(
        baked: dict[str, str]) -> None:
    found = records(resolve({"CHAT_MODEL": "org/m", "CHAT_ENGINE_PORT": "9001",
                             "CHAT_MODEL_PATH": baked["CHAT_MODEL_PATH"],
                             "DEPLOY_MODE": "chat"}, "vllm"))
    assert found["SERVED_MODEL_NAME"] == ("default", "org/m")
    assert found["TOOL_MODEL_PATH"] == ("default", "/opt/models/tool")
    assert "CHAT_ENGINE_PORT" not in found and "CHAT_MODEL_PATH" not in found
    assert "KV_DTYPE" not in found  # no GPU: vLLM's own (auto); GPU presets come from the shell
    tool = records(resolve({"DEPLOY_MODE": "tool", "TOOL_MODEL_PATH": baked["TOOL_MODEL_PATH"]},
                           "tool"))
    assert "CHAT_MODEL_PATH" not in tool and tool["WARMUP_MAX_WAIT"] == ("default", "120")


def test_the_apps_checks_run_at_bootstrap_without_an_api_key() -> None:
    found = resolve({"PORT": "8001", "DEPLOY_MODE": "chat"}, "vllm")
    assert found.errors == ["CHAT_ENGINE_PORT=8001 equals PORT; the chat engine needs its own "
                            "internal port (default 8001)"]


def test_vllm_model_quantization_and_flashinfer(tmp_path: Path, baked: dict[str, str]) -> None:
    bake(tmp_path / "awq", {"config.json": '{"quantization_config": {"quant_method": "awq"}}'})
    env = {**baked, "CHAT_MODEL_PATH": str(tmp_path / "awq"), "GPU_COUNT": "1"}
    found = records(resolve(env, "vllm"))
    assert found["CHAT_MODEL_QUANT"] == ("model config", "awq")
    assert found["FLASHINFER_AVAILABLE"] == ("image", "0")  # not in the test venv
    assert "CHAT_ATTENTION_BACKEND" not in found
    found = records(resolve({**env, "FLASHINFER_AVAILABLE": "1"}, "vllm"))
    assert found["CHAT_ATTENTION_BACKEND"] == ("gpu preset", "FLASHINFER")
    assert "CHAT_ATTENTION_BACKEND" not in records(
        resolve({**env, "FLASHINFER_AVAILABLE": "1", "GPU_COUNT": "0"}, "vllm"))


def test_vllm_a_quantization_that_is_not_one_word_is_a_warning(tmp_path: Path,
                                                              baked: dict[str, str]) -> None:
    odd = '{"quantization_config": {"quant_method": "a b"}}'
    chat = bake(tmp_path / "odd", {"config.json": odd})
    found = resolve({**baked, "CHAT_MODEL_PATH": str(chat)}, "vllm")
    assert "CHAT_MODEL_QUANT" not in records(found)
    assert found.warnings == [f"{chat / 'config.json'} names quantization 'a b', not one "
                              "word; ignored (set CHAT_QUANTIZATION to force one)"]


def test_vllm_tensor_parallel_size_above_the_visible_gpus_is_an_error(
        baked: dict[str, str]) -> None:
    found = resolve({**baked, "GPU_COUNT": "2", "TENSOR_PARALLEL_SIZE": "4"}, "vllm")
    assert found.errors == ["TENSOR_PARALLEL_SIZE 4 is more than the 2 visible GPU(s); lower it "
                            "or make more GPUs visible (--gpus, CUDA_VISIBLE_DEVICES)"]


def test_trt_engine_facts_are_read_once_and_bound_the_users_values(
        tmp_path: Path, baked: dict[str, str]) -> None:
    engine = engine_dir(tmp_path / "engine", 2, max_seq_len=4096, max_batch_size=16)
    env = {**baked, "TRT_ENGINE_DIR": str(engine),
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


@pytest.mark.parametrize("mode", ["tool", "both"])
def test_trt_without_an_engine_config_or_without_chat_reads_nothing(
        tmp_path: Path, baked: dict[str, str], mode: str) -> None:
    found = records(resolve({**baked, "DEPLOY_MODE": mode,
                             "TRT_ENGINE_DIR": str(bake(tmp_path / "engine", {}))}, "trt"))
    assert found["TENSOR_PARALLEL_SIZE"] == ("default", "1")
    assert not {"TRT_ENGINE_RANKS", "CHAT_MAX_LEN"} & set(found)


def test_each_served_directory_is_checked_against_its_manifest(tmp_path: Path,
                                                               baked: dict[str, str]) -> None:
    tool = Path(baked["TOOL_MODEL_PATH"])
    (tool / "config.json").write_text("{ }")
    (Path(baked["CHAT_MODEL_PATH"]) / "model.safetensors.incomplete").write_text("")
    found = resolve({**baked, "DEPLOY_MODE": "both"}, "vllm")
    assert found.errors == [
        f"tool model in {tool} does not match its download manifest: 'config.json' has 3 bytes, "
        "the manifest says 2",
        f"chat model in {baked['CHAT_MODEL_PATH']} holds a half-finished download "
        "(model.safetensors.incomplete); run main.sh --download-models again to finish it (a "
        "baked image: rebuild it)"]
    assert resolve({**baked, "DEPLOY_MODE": "chat", "TOOL_MODEL_PATH": "/nowhere"},
                   "vllm").errors[0].startswith("chat model in")  # tool is not served: unchecked
    mine = tmp_path / "mine"
    mine.mkdir()
    found = resolve({**baked, "DEPLOY_MODE": "tool", "TOOL_MODEL_PATH": str(mine)}, "tool")
    assert found.warnings == [f"tool model in {mine} (TOOL_MODEL_PATH, set by you) has no download"
                              " manifest; its files cannot be checked"]
    (tmp_path / "image.env").write_text(f"TOOL_MODEL_PATH={mine}\n")
    found = resolve({**baked, "DEPLOY_MODE": "tool", "TOOL_MODEL_PATH": str(mine),
                     "APP_ROOT": str(tmp_path)}, "tool")
    assert found.errors[0].startswith(f"tool model in {mine} has no download manifest")


def test_trt_an_unreadable_engine_config_is_one_error(tmp_path: Path,
                                                     baked: dict[str, str]) -> None:
    engine = bake(tmp_path / "engine", {"config.json": "{"})
    found = resolve({**baked, "TRT_ENGINE_DIR": str(engine)}, "trt")
    assert len(found.errors) == 1
    assert found.errors[0].startswith(f"{engine / 'config.json'}: not a readable engine config")
    assert found.errors[0].endswith("; rebuild the image with a complete engine")


@pytest.mark.parametrize(
    ("env", "message"),
    [({"PORT": "abc"}, "PORT='abc' is not valid; expected an integer between 1 and 65535"),
     ({"PORT": "70000"}, "PORT='70000' is not valid"), ({"PORT": "0"}, "PORT='0' is not valid"),
     ({"UVICORN_WORKERS": "0"}, "UVICORN_WORKERS='0' is not valid"),
     ({"GATEWAY_WORKERS": "0"}, "GATEWAY_WORKERS='0' is not valid"),
     ({"GATEWAY_WORKERS": "2"}, "GATEWAY_WORKERS=2 with DEPLOY_MODE=both: several gateway"),
     ({"HOST": "a b"}, "HOST='a b' is not valid; use an address or host name"),
     ({"SERVER_APP": "app"}, "SERVER_APP='app' is not valid; use module:attribute"),
     ({"WARMUP_FAIL_EXIT": "yes"}, "WARMUP_FAIL_EXIT='yes' is not valid; valid: 0, 1"),
     ({"WARMUP_WAIT_INTERVAL": "0"}, "WARMUP_WAIT_INTERVAL='0' is not valid"),
     ({"WARMUP_REQUEST_TIMEOUT": "0.0"}, "WARMUP_REQUEST_TIMEOUT='0.0' is not valid"),
     ({"TOOL_GPU_FRAC": "half"}, "TOOL_GPU_FRAC='half' is not valid"),
     ({"CHAT_GPU_FRAC": "0.80"}, "CHAT_GPU_FRAC (0.80) + TOOL_GPU_FRAC (0.20) is above 0.95 of "
                                 "GPU memory; lower one of them (defaults for DEPLOY_MODE=both: "
                                 "0.70 and 0.20)"),
     ({"UVICORN_WORKERS": "2", "DEPLOY_MODE": "chat"}, "UVICORN_WORKERS=2 with DEPLOY_MODE=chat:"
                                                       " each worker would start its own chat"),
     ({"CA_BUNDLE": "/nonexistent/ca.pem"}, "CA_BUNDLE '/nonexistent/ca.pem' is not a readable, "
                                            "non-empty file")],
)
def test_the_shells_settings_are_checked_here(baked: dict[str, str], env: dict[str, str],
                                              message: str) -> None:
    found = resolve({**baked, **env}, "vllm")
    assert len(found.errors) == 1 and found.errors[0].startswith(message), found.errors


def test_server_settings_defaults_and_normalized_values(baked: dict[str, str]) -> None:
    found = records(resolve({**baked, "PORT": "08080", "WARMUP_WAIT_INTERVAL": "1e-1",
                             "DEPLOY_MODE": "tool"}, "tool"))
    assert found["PORT"] == ("user", "8080") and found["WARMUP_WAIT_INTERVAL"] == ("user", "0.1")
    assert (found["HOST"], found["UVICORN_WORKERS"], found["SERVER_APP"]) == (
        ("default", "0.0.0.0"), ("default", "1"), ("default", "src.server:app"))
    assert found["GATEWAY_WORKERS"] == ("default", "1")
    assert (found["WARMUP_FAIL_EXIT"], found["WARMUP_REQUEST_TIMEOUT"]) == (
        ("default", "0"), ("default", "2"))
    assert found["HF_HUB_OFFLINE"] == ("default", "1")
    assert found["TOOL_GPU_FRAC"] == ("deploy mode", "0.90") and "CHAT_GPU_FRAC" not in found


@pytest.mark.parametrize(("mode", "shares"), [("chat", {"CHAT_GPU_FRAC": "0.90"}),
                                              ("both", {"CHAT_GPU_FRAC": "0.70",
                                                        "TOOL_GPU_FRAC": "0.20"})])
def test_gpu_shares_by_deploy_mode_and_none_on_the_cpu_flavor(
        baked: dict[str, str], mode: str, shares: dict[str, str]) -> None:
    found = records(resolve({**baked, "DEPLOY_MODE": mode}, "vllm"))
    assert {k: v for k, (s, v) in found.items() if k.endswith("_GPU_FRAC")} == shares
    assert all(found[k][0] == "deploy mode" for k in shares)
    cpu = records(resolve({**baked, "DEPLOY_MODE": mode, "VLLM_DEVICE": "cpu"}, "vllm"))
    assert not [k for k in cpu if k.endswith("_GPU_FRAC")]


def test_a_ca_bundle_goes_to_every_http_client(tmp_path: Path, baked: dict[str, str]) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("a bundle\n")
    found = records(resolve({**baked, "CA_BUNDLE": str(bundle), "CURL_CA_BUNDLE": "/mine"},
                            "tool"))
    assert found["REQUESTS_CA_BUNDLE"] == found["SSL_CERT_FILE"] == ("CA_BUNDLE", str(bundle))
    assert "CURL_CA_BUNDLE" not in found


@pytest.mark.parametrize("offline", ["1", "True", "on", "YES"])
def test_the_download_needs_the_hub_and_resolves_only_its_directories(offline: str) -> None:
    found = resolve({"HF_HUB_OFFLINE": offline}, "tool", download=True)
    assert found.errors == [f"HF_HUB_OFFLINE={offline} forbids the download of --download-models;"
                            " unset it for this container (the server's own container keeps it)"]
    found = records(resolve({"HF_HUB_OFFLINE": "0", "PORT": "x", "TOOL_MODEL_PATH": "/v/tool"},
                            "trt", download=True))
    assert found == {"CHAT_MODEL_PATH": ("default", "/opt/models/chat"),
                     "TRT_ENGINE_DIR": ("default", "/opt/engines/trt-chat")}
