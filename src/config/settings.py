"""Runtime settings of the served app, read from the environment and validated in one place."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from src.config import shell, timers
from src.config.models import CHAT_ENGINES, DEPLOY_MODES, VLLM_DEVICES
from src.config.parse import (
    SettingsError,
    choice,
    get,
    integer,
    number,
    optional_choice,
    seconds,
    switch,
)

KV_DTYPES = ("auto", "fp8", "fp8_e4m3", "fp8_e5m2")
# vLLM's --dtype choices.
CHAT_DTYPES = ("auto", "half", "float16", "bfloat16", "float", "float32")
# A byte count as vLLM's --kv-cache-memory-bytes reads it: digits, or a number with a decimal
# (k, m, g, t) or binary (K, M, G, T: whole numbers only) suffix.
_BYTES = re.compile(r"[0-9]+|[0-9]+(\.[0-9]+)?[kmgt]|[0-9]+[KMGT]", re.ASCII)
# The shares of GPU memory each deploy mode gives the chat engine and the tool model (as the
# bootstrap exports them), and the most the two may take together.
GPU_FRACTIONS = {"chat": {"CHAT_GPU_FRAC": "0.90"}, "tool": {"TOOL_GPU_FRAC": "0.90"},
                 "both": {"CHAT_GPU_FRAC": "0.70", "TOOL_GPU_FRAC": "0.20"}}
MAX_GPU_SHARE = 0.95
# Variables whose values are secrets: never in argv, logs, labels, manifests or a child's env.
SECRET_VARS = ("TEXT_API_KEY", "HF_TOKEN", "DOCKER_PASSWORD", "DOCKER_TOKEN")
_WORD = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Settings:
    """Everything the served app reads from the environment."""

    deploy_mode: str = "both"
    engine: str = "vllm"
    vllm_device: str = VLLM_DEVICES[0]
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
    shutdown_grace_s: float = timers.SHUTDOWN_GRACE_S
    engine_stop_timeout: float = timers.ENGINE_STOP_TIMEOUT
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
    # Uvicorn workers serving the routes over one chat engine (src/supervisor.py); 1: one process.
    gateway_workers: int = shell.Server.gateway_workers
    # Set by src/supervisor.py for its workers only: the file holding the engine's state.
    gateway_board: str | None = None

    @property
    def max_in_flight_here(self) -> int:
        """The requests in flight this process admits: MAX_CONCURRENT_CONNECTIONS, shared out
        evenly (rounded down) among the gateway's workers."""
        if self.gateway_board is None:
            return self.max_concurrent_connections
        return self.max_concurrent_connections // self.gateway_workers

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


def _frac(env: Mapping[str, str], name: str) -> float | None:
    """A fraction of GPU memory in (0, 1]; None when unset."""
    value = number(env, name, float, 0.01, 1.0)
    return None if value is None else float(value)


def _word(env: Mapping[str, str], name: str) -> str | None:
    """An optional single word (letters, digits, '_', '.', '-')."""
    value = get(env, name)
    if value and not _WORD.match(value):
        raise SettingsError(f"{name}={value!r} is not valid; expected one word like 'awq' or 'fp8'")
    return value or None


def _bytes(env: Mapping[str, str], name: str) -> str | None:
    """An optional byte count in vLLM's form (65536, 64M, 2G, 1.5g); None when unset."""
    value = get(env, name)
    if value and (not _BYTES.fullmatch(value) or not float(value.rstrip("kmgtKMGT")) > 0):
        raise SettingsError(
            f"{name}={value!r} is not valid; expected a byte count above 0: digits, or with a "
            "suffix K, M, G, T (powers of 1024, whole numbers) or k, m, g, t (powers of 1000), "
            "e.g. 2G"
        )
    return value or None


def header_limits(env: Mapping[str, str]) -> tuple[int, float]:
    """MAX_HEADER_BYTES and HEADER_TIMEOUT_S: all the HTTP protocol (src/protocol.py) reads."""
    return (integer(env, "MAX_HEADER_BYTES", Settings.max_header_bytes, 1024),
            seconds(env, "HEADER_TIMEOUT_S", Settings.header_timeout_s, 0.1))


def load_api_keys(env: Mapping[str, str]) -> tuple[str, ...]:
    """The accepted API keys from TEXT_API_KEY or the file named by TEXT_API_KEY_FILE."""
    inline, path = env.get("TEXT_API_KEY", ""), get(env, "TEXT_API_KEY_FILE")
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
    for index, key in enumerate(keys, 1):
        if not (key.isascii() and key.isprintable()):
            # An HTTP header carries bytes, read as latin-1: such a key could never match.
            raise SettingsError(f"{source}: key {index} of {len(keys)} holds a character that is "
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
    name = get(env, name_var)
    return get(env, path_var) or (name if name and Path(name).is_dir() else default)


def _engine_cmd(env: Mapping[str, str]) -> tuple[str, ...]:
    """CHAT_ENGINE_CMD split like a shell would; empty when unset."""
    raw = get(env, "CHAT_ENGINE_CMD")
    try:
        return tuple(shlex.split(raw))
    except ValueError as exc:
        raise SettingsError(f"CHAT_ENGINE_CMD={raw!r} cannot be split into words: {exc}") from None


def _existing(env: Mapping[str, str], name: str, kind: str, fix: str) -> str | None:
    """A path setting that must name an existing directory or file (kind "directory" or "file")
    when set; None when unset. fix: what to do instead, for the message."""
    path = get(env, name)
    if path and not (Path(path).is_dir() if kind == "directory" else Path(path).is_file()):
        raise SettingsError(f"{name}={path!r} is not a {kind}; {fix}")
    return path or None


def load_settings(env: Mapping[str, str], keys: bool = True) -> Settings:
    """Read and validate every runtime variable; raise SettingsError naming the first bad one.
    keys=False leaves the API keys unread (the bootstrap: a key is only needed to serve)."""
    chat_model = get(env, "CHAT_MODEL")
    tool_model = get(env, "TOOL_MODEL")
    max_header_bytes, header_timeout_s = header_limits(env)
    shutdown_grace_s, engine_stop_timeout = timers.drain_timers(env)
    settings = Settings(
        deploy_mode=choice(env, "DEPLOY_MODE", DEPLOY_MODES, Settings.deploy_mode),
        engine=choice(env, "ENGINE", CHAT_ENGINES, Settings.engine),
        vllm_device=choice(env, "VLLM_DEVICE", VLLM_DEVICES, Settings.vllm_device),
        api_keys=load_api_keys(env) if keys else (),
        chat_model_path=_model_dir(env, "CHAT_MODEL_PATH", "CHAT_MODEL", Settings.chat_model_path),
        served_model_name=get(env, "SERVED_MODEL_NAME") or chat_model or Settings.served_model_name,
        tool_model_path=_model_dir(env, "TOOL_MODEL_PATH", "TOOL_MODEL", Settings.tool_model_path),
        tool_model_name=tool_model if tool_model and not Path(tool_model).is_dir()
        else Settings.tool_model_name,
        trt_engine_dir=get(env, "TRT_ENGINE_DIR") or Settings.trt_engine_dir,
        chat_gpu_frac=_frac(env, "CHAT_GPU_FRAC"),
        tool_gpu_frac=_frac(env, "TOOL_GPU_FRAC"),
        trt_kv_free_gpu_frac=_frac(env, "TRT_KV_FREE_GPU_FRAC"),
        chat_max_len=number(env, "CHAT_MAX_LEN", int, 16),
        chat_quantization=_word(env, "CHAT_QUANTIZATION"),
        kv_dtype=optional_choice(env, "KV_DTYPE", KV_DTYPES),
        chat_kv_cache_bytes=_bytes(env, "CHAT_KV_CACHE_BYTES"),
        chat_dtype=optional_choice(env, "CHAT_DTYPE", CHAT_DTYPES),
        chat_enforce_eager=switch(env, "CHAT_ENFORCE_EAGER"),
        chat_attention_backend=_word(env, "CHAT_ATTENTION_BACKEND"),
        max_num_seqs=number(env, "MAX_NUM_SEQS", int, 1),
        max_num_batched_tokens=number(env, "MAX_NUM_BATCHED_TOKENS", int, 1),
        tensor_parallel_size=integer(env, "TENSOR_PARALLEL_SIZE", Settings.tensor_parallel_size,
                                     1, 64),
        chat_engine_port=integer(env, "CHAT_ENGINE_PORT", Settings.chat_engine_port, 1, 65535),
        chat_engine_cmd=_engine_cmd(env),
        chat_health_interval_s=seconds(env, "CHAT_HEALTH_INTERVAL_S",
                                        Settings.chat_health_interval_s, 0.05),
        chat_health_timeout_s=seconds(env, "CHAT_HEALTH_TIMEOUT_S",
                                       Settings.chat_health_timeout_s, 0.05),
        chat_health_failures=integer(env, "CHAT_HEALTH_FAILURES", Settings.chat_health_failures, 0,
                                     1000),
        chat_generation_check=switch(env, "CHAT_GENERATION_CHECK",
                                      Settings.chat_generation_check),
        chat_generation_check_timeout_s=seconds(env, "CHAT_GENERATION_CHECK_TIMEOUT_S",
                                               Settings.chat_generation_check_timeout_s, 0.1),
        shutdown_grace_s=shutdown_grace_s,
        engine_stop_timeout=engine_stop_timeout,
        max_concurrent_connections=integer(env, "MAX_CONCURRENT_CONNECTIONS",
                                           Settings.max_concurrent_connections, 1),
        tool_max_batch=integer(env, "TOOL_MAX_BATCH", Settings.tool_max_batch, 1, 4096),
        tool_max_chars=integer(env, "TOOL_MAX_CHARS", Settings.tool_max_chars, 1),
        tool_batch_wait_ms=seconds(env, "TOOL_BATCH_WAIT_MS", Settings.tool_batch_wait_ms, 0.0),
        chat_max_body_bytes=integer(env, "CHAT_MAX_BODY_BYTES", Settings.chat_max_body_bytes, 1024),
        max_header_bytes=max_header_bytes,
        header_timeout_s=header_timeout_s,
        body_timeout_s=seconds(env, "BODY_TIMEOUT_S", Settings.body_timeout_s, 0.1),
        metrics_require_key=switch(env, "METRICS_REQUIRE_KEY", Settings.metrics_require_key),
        metrics_multiproc_dir=_existing(
            env, "PROMETHEUS_MULTIPROC_DIR", "directory",
            "unset it (server.sh makes one when UVICORN_WORKERS is above 1) or create it"),
        gateway_workers=shell.gateway_workers(env),
        gateway_board=_existing(
            env, "GATEWAY_BOARD", "file",
            "it is set by the gateway's supervisor for its workers only: unset it"),
    )
    workers = settings.gateway_workers
    if workers > 1 and settings.deploy_mode != "chat":
        raise SettingsError(
            f"GATEWAY_WORKERS={workers} with DEPLOY_MODE={settings.deploy_mode}: several gateway "
            "workers serve the chat engine only (the tool model is loaded in one process); set "
            "DEPLOY_MODE=chat, or GATEWAY_WORKERS=1 (tool-only scales with UVICORN_WORKERS)")
    if workers > settings.max_concurrent_connections:
        raise SettingsError(
            f"GATEWAY_WORKERS={workers} is above MAX_CONCURRENT_CONNECTIONS="
            f"{settings.max_concurrent_connections}: each worker admits an equal share of it; "
            "raise MAX_CONCURRENT_CONNECTIONS or lower GATEWAY_WORKERS")
    if settings.vllm_device == "cpu" and settings.chat_gpu_frac is not None:
        raise SettingsError(
            f"CHAT_GPU_FRAC={get(env, 'CHAT_GPU_FRAC')!r} is a share of GPU memory, and this "
            "image runs vLLM on the CPU (VLLM_DEVICE=cpu); unset it and size the KV cache with "
            "CHAT_KV_CACHE_BYTES"
        )
    chat_frac, tool_frac = settings.chat_gpu_frac, settings.tool_gpu_frac
    if (settings.deploy_mode == "both" and chat_frac is not None and tool_frac is not None
            and chat_frac + tool_frac > MAX_GPU_SHARE + 1e-9):
        both = GPU_FRACTIONS["both"]
        raise SettingsError(
            f"CHAT_GPU_FRAC ({get(env, 'CHAT_GPU_FRAC')}) + TOOL_GPU_FRAC "
            f"({get(env, 'TOOL_GPU_FRAC')}) is above {MAX_GPU_SHARE} of GPU memory; lower one of "
            f"them (defaults for DEPLOY_MODE=both: {both['CHAT_GPU_FRAC']} and "
            f"{both['TOOL_GPU_FRAC']})")
    port = shell.port(env)
    if settings.serves_chat and port == settings.chat_engine_port:
        raise SettingsError(
            f"CHAT_ENGINE_PORT={settings.chat_engine_port} equals PORT; the chat engine needs "
            "its own internal port (default 8001)"
        )
    return settings
