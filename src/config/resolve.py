"""The settings the bootstrap resolves for a stack, each with its source, and every check on them.

The shell has already decided what only it can (the deploy mode, the GPU facts and the GPU or
CPU presets, all exported); resolve() adds the rest and checks the whole:
  - plain defaults the shell exports, from the definitions the app and the shell's scripts
    read (src/config/settings.py, shell.py): model directories, the engine's port, uvicorn's
    command, the warmup probe, HF_HUB_OFFLINE, a CA bundle for every HTTP client;
  - the GPU memory shares of the deploy mode;
  - the timers (src/config/timers.py);
  - what the image holds: FlashInfer (vllm), the chat model's quantization (vllm), the
    TensorRT-LLM engine's build limits, quantization, GPU architecture and rank count (trt),
    read once with pyhelpers.model_config; a user value the engine cannot serve is an error;
  - the directories the deploy mode serves, against their download manifests
    (src/config/artifacts.py);
  - the app's own validation (load_settings, without the API keys) on the result: a bad value,
    or the chat engine's port equal to PORT, stops the start here, not when the app starts.
A value already in the environment (the user's, the image's or a shell preset) is never replaced.
For `main.sh --download-models` (download=True) only the CA bundle, HF_HUB_OFFLINE and the
model directories matter.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pyhelpers.model_config import ConfigError, model_quantization, read_engine
from src.config import artifacts, shell
from src.config.parse import SettingsError, decimal, get
from src.config.settings import GPU_FRACTIONS, Settings, load_settings
from src.config.timers import timer_records

# The engine's build limits (pyhelpers.model_config.ENGINE_LIMITS) as the settings they bound.
ENGINE_LIMIT_SETTINGS = {
    "max_seq_len": "CHAT_MAX_LEN", "max_batch_size": "MAX_NUM_SEQS",
    "max_num_tokens": "MAX_NUM_BATCHED_TOKENS", "max_input_len": "TRT_MAX_INPUT_LEN",
    "max_output_len": "TRT_MAX_OUTPUT_LEN",
}


@dataclass
class Resolution:
    """What resolve() found: (name, source, value) to export; warnings, errors (a line each)."""

    env: Mapping[str, str]
    records: list[tuple[str, str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def default(self, name: str, value: object, source: str) -> None:
        """Export value for name with its source, unless it has one (the environment's, or
        one resolved before)."""
        if value is not None and not self.value(name):
            self.records.append((name, source, _text(value)))

    def given(self, name: str, value: object) -> None:
        """Export a value the environment gave, as src/config reads it (08080 → 8080)."""
        self.records.append((name, "user", _text(value)))

    def value(self, name: str) -> str:
        """The value name has now: the environment's, else the one resolved here."""
        return self.view().get(name, "")

    def view(self) -> dict[str, str]:
        """The environment as the bootstrap leaves it: the given one plus what was resolved."""
        return {**{k: v for k, v in self.env.items() if v.strip()},
                **{n: v for n, _, v in self.records}}


def _text(value: object) -> str:
    """A value as the shell exports it (a number without a trailing .0, a switch as 0 or 1)."""
    if isinstance(value, bool):
        return str(int(value))
    return decimal(value) if isinstance(value, float) else str(value)


def resolve(env: Mapping[str, str], stack: str, download: bool = False) -> Resolution:
    """Resolve and check every setting of a stack the shell has not decided."""
    out = Resolution(env)
    try:
        for name in shell.CA_VARS:
            out.default(name, shell.ca_bundle(env), "CA_BUNDLE")
        if download:
            _download(out, stack)
            return out
        out.default("HF_HUB_OFFLINE", "1", "default")
        out.records += timer_records(env, stack)
        _server(out, shell.load_server(env))
        settings = load_settings(env, keys=False)
    except SettingsError as exc:
        out.errors.append(str(exc))
        return out
    if not (stack == "vllm" and settings.vllm_device == "cpu"):
        for name, share in GPU_FRACTIONS[settings.deploy_mode].items():
            out.default(name, share, "deploy mode")
    workers = int(out.value("UVICORN_WORKERS"))
    if settings.serves_chat and workers > 1:
        out.errors.append(
            f"UVICORN_WORKERS={workers} with DEPLOY_MODE={settings.deploy_mode}: each worker "
            "would start its own chat engine on CHAT_ENGINE_PORT; keep UVICORN_WORKERS=1 (with "
            "DEPLOY_MODE=chat, GATEWAY_WORKERS=N serves with N workers over one engine) or scale "
            "with more containers (replicas)")
    out.default("TOOL_MODEL_PATH", settings.tool_model_path, "default")
    if stack != "tool":
        _engine_defaults(settings, out)
    if stack == "vllm":
        _vllm(settings, out)
    if stack == "trt":
        out.default("TRT_ENGINE_DIR", settings.trt_engine_dir, "default")
        if settings.serves_chat:
            _trt_engine(settings, out)
    if stack != "tool":
        out.default("TENSOR_PARALLEL_SIZE", settings.tensor_parallel_size, "default")
    for label, var, directory in artifacts.needed(settings, stack):
        kind, message = artifacts.check_dir(env, label, var, directory)
        if kind == "error":
            out.errors.append(message)
        elif kind == "warning":
            out.warnings.append(message)
    if not out.errors:
        try:  # the whole, as the app will read it: e.g. the two GPU shares together
            load_settings(out.view(), keys=False)
        except SettingsError as exc:
            out.errors.append(str(exc))
    return out


def _download(out: Resolution, stack: str) -> None:
    """`main.sh --download-models`: the directories it fills; the Hub must be reachable."""
    if shell.hub_offline_on(out.env):
        out.errors.append(
            f"HF_HUB_OFFLINE={get(out.env, 'HF_HUB_OFFLINE')} forbids the download of "
            "--download-models; unset it for this container (the server's own container "
            "keeps it)")
    dirs = {"tool": ("TOOL_MODEL_PATH",), "vllm": ("CHAT_MODEL_PATH", "TOOL_MODEL_PATH"),
            "trt": ("CHAT_MODEL_PATH", "TRT_ENGINE_DIR", "TOOL_MODEL_PATH")}[stack]
    for name in dirs:
        out.default(name, getattr(Settings, name.lower()), "default")


def _server(out: Resolution, server: shell.Server) -> None:
    """uvicorn's command and the warmup probe, as src/config/shell.py reads them."""
    for name, value in (("SERVER_APP", server.server_app), ("HOST", server.host),
                        ("PORT", server.port), ("UVICORN_WORKERS", server.uvicorn_workers),
                        ("GATEWAY_WORKERS", server.gateway_workers),
                        ("WARMUP_FAIL_EXIT", server.warmup_fail_exit),
                        ("WARMUP_REQUEST_TIMEOUT", server.warmup_request_timeout_s),
                        ("WARMUP_WAIT_INTERVAL", server.warmup_wait_interval_s)):
        if get(out.env, name):
            out.given(name, value)
        else:
            out.default(name, value, "default")


def _engine_defaults(settings: Settings, out: Resolution) -> None:
    """The chat side's plain defaults, the app's own (src/config/settings.py)."""
    out.default("CHAT_MODEL_PATH", settings.chat_model_path, "default")
    out.default("SERVED_MODEL_NAME", settings.served_model_name, "default")
    out.default("CHAT_ENGINE_PORT", settings.chat_engine_port, "default")


def _vllm(settings: Settings, out: Resolution) -> None:
    """FlashInfer, the attention backend it brings, the model's quantization, TP vs the GPUs."""
    # find_spec, never import: importing flashinfer pulls in torch and costs seconds.
    out.default("FLASHINFER_AVAILABLE",
                int(importlib.util.find_spec("flashinfer") is not None), "image")
    gpus = int(get(out.env, "GPU_COUNT") or 0)
    if out.value("FLASHINFER_AVAILABLE") == "1" and gpus > 0:
        out.default("CHAT_ATTENTION_BACKEND", "FLASHINFER", "gpu preset")
    if not settings.serves_chat:
        return
    try:
        out.default("CHAT_MODEL_QUANT", model_quantization(Path(settings.chat_model_path)),
                    "model config")
    except ConfigError as exc:
        out.warnings.append(f"{exc}; ignored (set CHAT_QUANTIZATION to force one)")
    if 0 < gpus < settings.tensor_parallel_size:
        out.errors.append(
            f"TENSOR_PARALLEL_SIZE {settings.tensor_parallel_size} is more than the {gpus} "
            "visible GPU(s); lower it or make more GPUs visible (--gpus, CUDA_VISIBLE_DEVICES)")


def _trt_engine(settings: Settings, out: Resolution) -> None:
    """The engine's facts (pyhelpers.model_config): its limits bound the user's values."""
    # the KV cache's share: the chat engine's share of GPU memory, as the deploy mode set it
    out.default("TRT_KV_FREE_GPU_FRAC", out.value("CHAT_GPU_FRAC") or None, "deploy mode")
    try:
        engine = read_engine(Path(settings.trt_engine_dir))
    except ConfigError as exc:
        out.errors.append(f"{exc}; rebuild the image with a complete engine")
        return
    if engine is None:  # start_server.sh's engine check names what is missing
        return
    for key, name in ENGINE_LIMIT_SETTINGS.items():
        limit, given = engine.limits.get(key), get(out.env, name)
        if limit is None:
            continue
        if given and not (given.isdigit() and 1 <= int(given) <= limit):
            out.errors.append(
                f"{name} '{given}' is not valid for this engine: it was built for at most "
                f"{limit}; use a whole number from 1 to {limit} (or unset it)")
        out.default(name, limit, "engine config")
    given = get(out.env, "TENSOR_PARALLEL_SIZE")
    if engine.tp_size is not None and given and given != str(engine.tp_size):
        out.errors.append(
            f"TENSOR_PARALLEL_SIZE '{given}' does not match the engine, which was built for "
            f"{engine.tp_size} rank(s) (tp_size); unset it (the engine decides)")
    out.default("TENSOR_PARALLEL_SIZE", engine.tp_size, "engine config")
    out.default("CHAT_MODEL_QUANT", engine.quant_algo, "engine config")
    out.default("TRT_ENGINE_SM_ARCH", engine.sm_arch, "engine config")
    out.default("TRT_ENGINE_RANKS", engine.ranks, "engine config")
