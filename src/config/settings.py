"""Runtime settings of the served app, read from the environment and validated in one place."""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from src.config.models import VLLM_DEVICES

DEPLOY_MODES = ("chat", "tool", "both")
ENGINES = ("vllm", "trt")
KV_DTYPES = ("auto", "fp8", "fp8_e4m3", "fp8_e5m2")
# vLLM's --dtype choices.
CHAT_DTYPES = ("auto", "half", "float16", "bfloat16", "float", "float32")
# A byte count as vLLM's --kv-cache-memory-bytes reads it: digits, or a number with a decimal
# (k, m, g, t) or binary (K, M, G, T: whole numbers only) suffix.
_BYTES = re.compile(r"[0-9]+|[0-9]+(\.[0-9]+)?[kmgt]|[0-9]+[KMGT]", re.ASCII)
# Variables whose values are secrets: never in argv, logs, labels, manifests or a child's env.
SECRET_VARS = ("TEXT_API_KEY", "HF_TOKEN", "DOCKER_PASSWORD", "DOCKER_TOKEN")
_WORD = re.compile(r"^[A-Za-z0-9_.-]+$")


class SettingsError(ValueError):
    """An environment variable holds a value the app cannot run with."""


@dataclass(frozen=True)
class Settings:
    """Everything the served app reads from the environment."""

    deploy_mode: str = "both"
    engine: str = "vllm"
    vllm_device: str = "cuda"
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    chat_model_path: str = "/opt/models/chat"
    served_model_name: str = "chat"
    tool_model_path: str = "/opt/models/tool"
    tool_model_name: str = "tool"
    trt_engine_dir: str = "/opt/engines/trt-chat"
    chat_gpu_frac: float | None = None
    tool_gpu_frac: float | None = None
    trt_kv_free_gpu_frac: float | None = None
    chat_max_len: int | None = None
    chat_quantization: str | None = None
    kv_dtype: str | None = None
    chat_kv_cache_bytes: str | None = None
    chat_dtype: str | None = None
    chat_enforce_eager: bool = False
    chat_attention_backend: str | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    tensor_parallel_size: int = 1
    chat_engine_port: int = 8001
    chat_engine_cmd: tuple[str, ...] = ()
    chat_health_interval_s: float = 5.0
    chat_health_timeout_s: float = 5.0
    chat_health_failures: int = 3
    # The start-up gate: one 1-token completion must succeed before the chat engine is ready.
    chat_generation_check: bool = True
    # One token takes milliseconds to a second once warm, but the first generation after start
    # may compile kernels just in time that loading did not touch (sampling, attention for a
    # new shape): two minutes leaves room for that, and still ends a start-up that can never
    # serve in bounded time.
    chat_generation_check_timeout_s: float = 120.0
    shutdown_grace_s: float = 15.0
    engine_stop_timeout: float = 20.0
    max_concurrent_connections: int = 64
    tool_max_batch: int = 32
    tool_max_chars: int = 4096
    tool_batch_wait_ms: float = 2.0
    chat_max_body_bytes: int = 1 << 20
    max_header_bytes: int = 32 << 10
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    # GET /metrics asks for the API key (Prometheus then sends it as a bearer token).
    metrics_require_key: bool = False
    # prometheus_client's directory for several workers' values (server.sh makes it).
    metrics_multiproc_dir: str | None = None

    @property
    def tool_max_body_bytes(self) -> int:
        """The largest /v1/classify body: TOOL_MAX_BATCH texts of TOOL_MAX_CHARS characters, each
        character written as JSON's longest form (a `\\uXXXX\\uXXXX` pair, 12 bytes), 8 bytes per
        text for quotes, comma and spaces, and 1 KiB for the rest of the object."""
        return self.tool_max_batch * (12 * self.tool_max_chars + 8) + 1024

    @property
    def serves_chat(self) -> bool:
        """True when the deploy mode includes the chat engine."""
        return self.deploy_mode in ("chat", "both")

    @property
    def serves_tool(self) -> bool:
        """True when the deploy mode includes the tool model."""
        return self.deploy_mode in ("tool", "both")


def _get(env: Mapping[str, str], name: str) -> str:
    """The stripped value of a variable; empty when unset."""
    return env.get(name, "").strip()


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    """A value from a fixed set of choices."""
    value = _get(env, name) or default
    if value not in choices:
        raise SettingsError(f"{name}={value!r} is not valid; valid: {', '.join(choices)}")
    return value


def _number(
    env: Mapping[str, str], name: str, kind: type, low: float, high: float | None = None
) -> int | float | None:
    """An int or float within [low, high]; None when unset."""
    raw = _get(env, name)
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if (value is None or not math.isfinite(value) or value < low
            or (high is not None and value > high)):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        what = "an integer" if kind is int else "a number"
        raise SettingsError(f"{name}={raw!r} is not valid; expected {what} {bound}")
    return value


def _frac(env: Mapping[str, str], name: str) -> float | None:
    """A fraction of GPU memory in (0, 1]; None when unset."""
    value = _number(env, name, float, 0.01, 1.0)
    return None if value is None else float(value)


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int | None = None) -> int:
    """An integer with a default."""
    value = _number(env, name, int, low, high)
    return default if value is None else int(value)


def _float(env: Mapping[str, str], name: str, default: float, low: float) -> float:
    """A float with a default."""
    value = _number(env, name, float, low)
    return default if value is None else float(value)


def _word(env: Mapping[str, str], name: str) -> str | None:
    """An optional single word (letters, digits, '_', '.', '-')."""
    value = _get(env, name)
    if value and not _WORD.match(value):
        raise SettingsError(f"{name}={value!r} is not valid; expected one word like 'awq' or 'fp8'")
    return value or None


def _bytes(env: Mapping[str, str], name: str) -> str | None:
    """An optional byte count in vLLM's form (65536, 64M, 2G, 1.5g); None when unset."""
    value = _get(env, name)
    if value and (not _BYTES.fullmatch(value) or not float(value.rstrip("kmgtKMGT")) > 0):
        raise SettingsError(
            f"{name}={value!r} is not valid; expected a byte count above 0: digits, or with a "
            "suffix K, M, G, T (powers of 1024, whole numbers) or k, m, g, t (powers of 1000), "
            "e.g. 2G"
        )
    return value or None


def _switch(env: Mapping[str, str], name: str) -> bool:
    """A 0/1 switch; unset is 0."""
    return _choice(env, name, ("0", "1"), "0") == "1"


def log_settings(env: Mapping[str, str]) -> tuple[str, bool]:
    """LOG_LEVEL as a logging level name (info when unset or unknown) and LOG_FORMAT=json."""
    level = _get(env, "LOG_LEVEL").upper() or "INFO"
    level = {"WARN": "WARNING"}.get(level, level)
    return (level if level in ("DEBUG", "INFO", "WARNING", "ERROR") else "INFO",
            _get(env, "LOG_FORMAT") == "json")


def header_limits(env: Mapping[str, str]) -> tuple[int, float]:
    """MAX_HEADER_BYTES and HEADER_TIMEOUT_S: all the HTTP protocol (src/protocol.py) reads."""
    return (_int(env, "MAX_HEADER_BYTES", Settings.max_header_bytes, 1024),
            _float(env, "HEADER_TIMEOUT_S", Settings.header_timeout_s, 0.1))


def load_api_keys(env: Mapping[str, str]) -> tuple[str, ...]:
    """The accepted API keys from TEXT_API_KEY or the file named by TEXT_API_KEY_FILE."""
    inline, path = env.get("TEXT_API_KEY", ""), _get(env, "TEXT_API_KEY_FILE")
    if inline.replace(",", "").strip() and path:
        raise SettingsError("TEXT_API_KEY and TEXT_API_KEY_FILE are both set; set only one")
    source = "TEXT_API_KEY"
    if path:
        source = f"TEXT_API_KEY_FILE={path!r}"
        try:
            inline = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise SettingsError(f"{source} cannot be read: {reason}") from None
    keys = tuple(k.strip() for k in inline.replace("\n", ",").split(",") if k.strip())
    for number, key in enumerate(keys, 1):
        if not (key.isascii() and key.isprintable()):
            # An HTTP header carries bytes, read as latin-1: such a key could never match.
            raise SettingsError(f"{source}: key {number} of {len(keys)} holds a character that is "
                                "not printable ASCII; keys may use only the characters from ' ' "
                                "to '~' (letters, digits, punctuation)")
    if not keys:
        raise SettingsError(
            f"no API key: {source} is empty or unset; set TEXT_API_KEY (comma-separated keys) "
            "or TEXT_API_KEY_FILE (a file holding them)"
        )
    return keys


def _model_dir(env: Mapping[str, str], path_var: str, name_var: str, default: str) -> str:
    """PATH_VAR when set, else NAME_VAR when that names a directory, else the default."""
    name = _get(env, name_var)
    return _get(env, path_var) or (name if name and Path(name).is_dir() else default)


def _engine_cmd(env: Mapping[str, str]) -> tuple[str, ...]:
    """CHAT_ENGINE_CMD split like a shell would; empty when unset."""
    raw = _get(env, "CHAT_ENGINE_CMD")
    try:
        return tuple(shlex.split(raw))
    except ValueError as exc:
        raise SettingsError(f"CHAT_ENGINE_CMD={raw!r} cannot be split into words: {exc}") from None


def _multiproc_dir(env: Mapping[str, str]) -> str | None:
    """PROMETHEUS_MULTIPROC_DIR: an existing directory when set; None when unset."""
    path = _get(env, "PROMETHEUS_MULTIPROC_DIR")
    if path and not Path(path).is_dir():
        raise SettingsError(f"PROMETHEUS_MULTIPROC_DIR={path!r} is not a directory; unset it "
                            "(server.sh makes one when UVICORN_WORKERS is above 1) or create it")
    return path or None


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read and validate every runtime variable; raise SettingsError naming the first bad one."""
    chat_model = _get(env, "CHAT_MODEL")
    tool_model = _get(env, "TOOL_MODEL")
    max_header_bytes, header_timeout_s = header_limits(env)
    settings = Settings(
        deploy_mode=_choice(env, "DEPLOY_MODE", DEPLOY_MODES, "both"),
        engine=_choice(env, "ENGINE", ENGINES, "vllm"),
        vllm_device=_choice(env, "VLLM_DEVICE", VLLM_DEVICES, VLLM_DEVICES[0]),
        api_keys=load_api_keys(env),
        chat_model_path=_model_dir(env, "CHAT_MODEL_PATH", "CHAT_MODEL", "/opt/models/chat"),
        served_model_name=_get(env, "SERVED_MODEL_NAME") or chat_model or "chat",
        tool_model_path=_model_dir(env, "TOOL_MODEL_PATH", "TOOL_MODEL", "/opt/models/tool"),
        tool_model_name=tool_model if tool_model and not Path(tool_model).is_dir() else "tool",
        trt_engine_dir=_get(env, "TRT_ENGINE_DIR") or "/opt/engines/trt-chat",
        chat_gpu_frac=_frac(env, "CHAT_GPU_FRAC"),
        tool_gpu_frac=_frac(env, "TOOL_GPU_FRAC"),
        trt_kv_free_gpu_frac=_frac(env, "TRT_KV_FREE_GPU_FRAC"),
        chat_max_len=_number(env, "CHAT_MAX_LEN", int, 16),
        chat_quantization=_word(env, "CHAT_QUANTIZATION"),
        kv_dtype=_choice(env, "KV_DTYPE", KV_DTYPES, "auto") if _get(env, "KV_DTYPE") else None,
        chat_kv_cache_bytes=_bytes(env, "CHAT_KV_CACHE_BYTES"),
        chat_dtype=_choice(env, "CHAT_DTYPE", CHAT_DTYPES, "auto") if _get(env, "CHAT_DTYPE")
        else None,
        chat_enforce_eager=_switch(env, "CHAT_ENFORCE_EAGER"),
        chat_attention_backend=_word(env, "CHAT_ATTENTION_BACKEND"),
        max_num_seqs=_number(env, "MAX_NUM_SEQS", int, 1),
        max_num_batched_tokens=_number(env, "MAX_NUM_BATCHED_TOKENS", int, 1),
        tensor_parallel_size=_int(env, "TENSOR_PARALLEL_SIZE", 1, 1, 64),
        chat_engine_port=_int(env, "CHAT_ENGINE_PORT", 8001, 1, 65535),
        chat_engine_cmd=_engine_cmd(env),
        chat_health_interval_s=_float(env, "CHAT_HEALTH_INTERVAL_S", 5.0, 0.05),
        chat_health_timeout_s=_float(env, "CHAT_HEALTH_TIMEOUT_S", 5.0, 0.05),
        chat_health_failures=_int(env, "CHAT_HEALTH_FAILURES", 3, 0, 1000),
        chat_generation_check=_choice(env, "CHAT_GENERATION_CHECK", ("0", "1"),
                                      "1" if Settings.chat_generation_check else "0") == "1",
        chat_generation_check_timeout_s=_float(env, "CHAT_GENERATION_CHECK_TIMEOUT_S",
                                               Settings.chat_generation_check_timeout_s, 0.1),
        shutdown_grace_s=_float(env, "SHUTDOWN_GRACE_S", 15.0, 0.0),
        engine_stop_timeout=_float(env, "ENGINE_STOP_TIMEOUT", 20.0, 0.0),
        max_concurrent_connections=_int(env, "MAX_CONCURRENT_CONNECTIONS", 64, 1),
        tool_max_batch=_int(env, "TOOL_MAX_BATCH", 32, 1, 4096),
        tool_max_chars=_int(env, "TOOL_MAX_CHARS", 4096, 1),
        tool_batch_wait_ms=_float(env, "TOOL_BATCH_WAIT_MS", 2.0, 0.0),
        chat_max_body_bytes=_int(env, "CHAT_MAX_BODY_BYTES", Settings.chat_max_body_bytes, 1024),
        max_header_bytes=max_header_bytes,
        header_timeout_s=header_timeout_s,
        body_timeout_s=_float(env, "BODY_TIMEOUT_S", Settings.body_timeout_s, 0.1),
        metrics_require_key=_choice(env, "METRICS_REQUIRE_KEY", ("0", "1"),
                                    "1" if Settings.metrics_require_key else "0") == "1",
        metrics_multiproc_dir=_multiproc_dir(env),
    )
    if settings.vllm_device == "cpu" and settings.chat_gpu_frac is not None:
        raise SettingsError(
            f"CHAT_GPU_FRAC={_get(env, 'CHAT_GPU_FRAC')!r} is a share of GPU memory, and this "
            "image runs vLLM on the CPU (VLLM_DEVICE=cpu); unset it and size the KV cache with "
            "CHAT_KV_CACHE_BYTES"
        )
    port = _int(env, "PORT", 8000, 1, 65535)
    if settings.serves_chat and port == settings.chat_engine_port:
        raise SettingsError(
            f"CHAT_ENGINE_PORT={settings.chat_engine_port} equals PORT; the chat engine needs "
            "its own internal port (default 8001)"
        )
    return settings
