"""`main.sh --explain`: every setting of a stack with its value and where the value came from.

The sources of what the bootstrap decided (default, derived, deploy mode, gpu preset, cpu
preset, model config, engine config, CA_BUNDLE …) come from the shell, which recorded them as it
exported the values (settings.sh: settings_explain passes them); a value with no recorded source
was given to the container: `image` when it equals what the Dockerfile baked in
($APP_ROOT/image.env), else `user`. Secrets print as ***.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from src.config.parse import get


def _names(text: str) -> tuple[str, ...]:
    """Variable names written as one blank-separated string (easier to read as a table)."""
    return tuple(text.split())


# What every stack shows after its own settings.
_COMMON = _names(
    "HOST PORT UVICORN_WORKERS GATEWAY_WORKERS LOG_LEVEL LOG_FORMAT TEXT_API_KEY TEXT_API_KEY_FILE "
    "MAX_CONCURRENT_CONNECTIONS TOOL_MAX_BATCH TOOL_MAX_CHARS TOOL_BATCH_WAIT_MS SHUTDOWN_GRACE_S "
    "MAX_HEADER_BYTES HEADER_TIMEOUT_S BODY_TIMEOUT_S METRICS_REQUIRE_KEY "
    "GPU_SM_ARCH DETECTED_GPU_NAME GPU_VRAM_GB GPU_COUNT "
    "TORCH_CUDA_ARCH_LIST PYTORCH_ALLOC_CONF CUDA_DEVICE_MAX_CONNECTIONS "
    "HF_HUB_OFFLINE CA_BUNDLE REQUESTS_CA_BUNDLE SSL_CERT_FILE CURL_CA_BUNDLE "
    "WARMUP_MAX_WAIT WARMUP_WAIT_INTERVAL WARMUP_FAIL_EXIT ENGINE_STOP_TIMEOUT SERVER_STOP_TIMEOUT"
)
STACK_SETTINGS: dict[str, tuple[str, ...]] = {
    "vllm": (*_names(
        "DEPLOY_MODE ENGINE CHAT_MODEL CHAT_MODEL_PATH SERVED_MODEL_NAME TOOL_MODEL "
        "TOOL_MODEL_PATH CHAT_GPU_FRAC TOOL_GPU_FRAC CHAT_MAX_LEN CHAT_QUANTIZATION "
        "CHAT_MODEL_QUANT VLLM_DEVICE CHAT_KV_CACHE_BYTES CHAT_ENFORCE_EAGER CHAT_DTYPE "
        "VLLM_CPU_OMP_THREADS_BIND VLLM_CPU_NUM_OF_RESERVED_CPU KV_DTYPE MAX_NUM_SEQS "
        "MAX_NUM_BATCHED_TOKENS TENSOR_PARALLEL_SIZE CHAT_ENGINE_PORT CHAT_ENGINE_CMD "
        "FLASHINFER_AVAILABLE CHAT_ATTENTION_BACKEND CHAT_MAX_BODY_BYTES"), *_COMMON),
    "trt": (*_names(
        "DEPLOY_MODE ENGINE CHAT_MODEL CHAT_MODEL_PATH SERVED_MODEL_NAME TOOL_MODEL "
        "TOOL_MODEL_PATH TRT_ENGINE_REPO TRT_ENGINE_LABEL TRT_ENGINE_DIR CHAT_GPU_FRAC "
        "TOOL_GPU_FRAC TRT_KV_FREE_GPU_FRAC CHAT_MAX_LEN TRT_MAX_INPUT_LEN TRT_MAX_OUTPUT_LEN "
        "MAX_NUM_SEQS MAX_NUM_BATCHED_TOKENS TENSOR_PARALLEL_SIZE CHAT_MODEL_QUANT "
        "CHAT_ENGINE_PORT CHAT_ENGINE_CMD CHAT_MAX_BODY_BYTES GPU_SM TRT_ENGINE_SM_ARCH "
        "TRT_ENGINE_RANKS"), *_COMMON),
    "tool": ("DEPLOY_MODE", "TOOL_MODEL", "TOOL_MODEL_PATH", "TOOL_GPU_FRAC", *_COMMON),
}
# Names whose values are never shown (MAX_NUM_BATCHED_TOKENS is a number, not a token).
_SECRET = re.compile(r"KEY|PASSWORD|SECRET|TOKEN$")


def image_values(env: Mapping[str, str]) -> dict[str, str]:
    """What the Dockerfile baked in: $APP_ROOT/image.env (none in a test layout)."""
    try:
        text = (Path(get(env, "APP_ROOT")) / "image.env").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    return dict(line.split("=", 1) for line in text.splitlines()
                if re.match(r"[A-Za-z_][A-Za-z0-9_]*=", line))


def explain(env: Mapping[str, str], stack: str, sources: Mapping[str, str]) -> str:
    """The --explain table: `NAME value (source)`, one line per setting of the stack."""
    baked = image_values(env)
    lines = []
    for name in STACK_SETTINGS[stack]:
        value = env.get(name, "")
        if not value:
            source = "unset"
        else:
            source = sources.get(name) or ("image" if baked.get(name) == value else "user")
        shown = "***" if value and _SECRET.search(name) else value or "<unset>"
        lines.append(f"{name:<28} {shown:<44} ({source})\n")
    return "".join(lines)
