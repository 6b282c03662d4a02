"""The settings the bootstrap resolves for a stack, each with its source, and every check on them.

The shell has already decided what only it can (the deploy mode, the GPU facts and the GPU or
CPU presets, all exported); resolve() adds the rest and checks the whole:
  - the app's own validation (load_settings, without the API keys): a bad value, or the chat
    engine's port equal to PORT, stops the start here, not when the app starts;
  - plain defaults the shell exports (the model directories, the engine's port, ...), from the
    same definitions the app reads;
  - the timers (src/config/timers.py);
  - what the image holds: FlashInfer (vllm), the chat model's quantization (vllm), the
    TensorRT-LLM engine's build limits, quantization, GPU architecture and rank count (trt),
    read once with pyhelpers.model_config; a user value the engine cannot serve is an error.
A value already in the environment (the user's, the image's or a shell preset) is never replaced.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pyhelpers.model_config import ConfigError, model_quantization, read_engine
from src.config.parse import SettingsError, decimal, get
from src.config.settings import Settings, load_settings
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

    records: list[tuple[str, str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def default(self, env: Mapping[str, str], name: str, value: object, source: str) -> None:
        """Export value for name with its source, unless it has one (the environment's, or
        one resolved before)."""
        if value is not None and not self.value(env, name):
            text = decimal(value) if isinstance(value, float) else str(value)
            self.records.append((name, source, text))

    def value(self, env: Mapping[str, str], name: str) -> str:
        """The value name has now: the environment's, else the one resolved here."""
        resolved = {n: v for n, _, v in self.records}
        return get(env, name) or resolved.get(name, "")


def resolve(env: Mapping[str, str], stack: str) -> Resolution:
    """Resolve and check every setting of a stack the shell has not decided."""
    out = Resolution()
    try:
        out.records += timer_records(env, stack)
        settings = load_settings(env, keys=False)
    except SettingsError as exc:
        out.errors.append(str(exc))
        return out
    chat = get(env, "DEPLOY_CHAT") == "1"
    out.default(env, "TOOL_MODEL_PATH", settings.tool_model_path, "default")
    if stack != "tool":
        _engine_defaults(env, settings, out)
    if stack == "vllm":
        _vllm(env, settings, chat, out)
    if stack == "trt":
        out.default(env, "TRT_ENGINE_DIR", settings.trt_engine_dir, "default")
        if chat:
            _trt_engine(env, settings, out)
    if stack != "tool":
        out.default(env, "TENSOR_PARALLEL_SIZE", settings.tensor_parallel_size, "default")
    return out


def _engine_defaults(env: Mapping[str, str], settings: Settings, out: Resolution) -> None:
    """The chat side's plain defaults, the app's own (src/config/settings.py)."""
    out.default(env, "CHAT_MODEL_PATH", settings.chat_model_path, "default")
    out.default(env, "SERVED_MODEL_NAME", settings.served_model_name, "default")
    out.default(env, "CHAT_ENGINE_PORT", settings.chat_engine_port, "default")


def _vllm(env: Mapping[str, str], settings: Settings, chat: bool, out: Resolution) -> None:
    """FlashInfer, the attention backend it brings, the model's quantization, TP vs the GPUs."""
    out.default(env, "KV_DTYPE", "auto", "default")
    # find_spec, never import: importing flashinfer pulls in torch and costs seconds.
    out.default(env, "FLASHINFER_AVAILABLE",
                int(importlib.util.find_spec("flashinfer") is not None), "image")
    gpus = int(get(env, "GPU_COUNT") or 0)
    if out.value(env, "FLASHINFER_AVAILABLE") == "1" and gpus > 0:
        out.default(env, "CHAT_ATTENTION_BACKEND", "FLASHINFER", "gpu preset")
    if not chat:
        return
    try:
        out.default(env, "CHAT_MODEL_QUANT", model_quantization(Path(settings.chat_model_path)),
                    "model config")
    except ConfigError as exc:
        out.warnings.append(f"{exc}; ignored (set CHAT_QUANTIZATION to force one)")
    if 0 < gpus < settings.tensor_parallel_size:
        out.errors.append(
            f"TENSOR_PARALLEL_SIZE {settings.tensor_parallel_size} is more than the {gpus} "
            "visible GPU(s); lower it or make more GPUs visible (--gpus, CUDA_VISIBLE_DEVICES)")


def _trt_engine(env: Mapping[str, str], settings: Settings, out: Resolution) -> None:
    """The engine's facts (pyhelpers.model_config): its limits bound the user's values."""
    # the KV cache's share: the chat engine's share of GPU memory, as the deploy mode set it
    out.default(env, "TRT_KV_FREE_GPU_FRAC", get(env, "CHAT_GPU_FRAC") or None, "deploy mode")
    try:
        engine = read_engine(Path(settings.trt_engine_dir))
    except ConfigError as exc:
        out.errors.append(f"{exc}; rebuild the image with a complete engine")
        return
    if engine is None:  # start_server.sh's engine check names what is missing
        return
    for key, name in ENGINE_LIMIT_SETTINGS.items():
        limit, given = engine.limits.get(key), get(env, name)
        if limit is None:
            continue
        if given and not (given.isdigit() and 1 <= int(given) <= limit):
            out.errors.append(
                f"{name} '{given}' is not valid for this engine: it was built for at most "
                f"{limit}; use a whole number from 1 to {limit} (or unset it)")
        out.default(env, name, limit, "engine config")
    given = get(env, "TENSOR_PARALLEL_SIZE")
    if engine.tp_size is not None and given and given != str(engine.tp_size):
        out.errors.append(
            f"TENSOR_PARALLEL_SIZE '{given}' does not match the engine, which was built for "
            f"{engine.tp_size} rank(s) (tp_size); unset it (the engine decides)")
    out.default(env, "TENSOR_PARALLEL_SIZE", engine.tp_size, "engine config")
    out.default(env, "CHAT_MODEL_QUANT", engine.quant_algo, "engine config")
    out.default(env, "TRT_ENGINE_SM_ARCH", engine.sm_arch, "engine config")
    out.default(env, "TRT_ENGINE_RANKS", engine.ranks, "engine config")
