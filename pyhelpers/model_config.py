"""What a baked model or TensorRT-LLM engine says about itself, read once by the bootstrap.

    model_quantization(model_dir)   the quant_method of a Hugging Face config.json
    read_engine(engine_dir)         an engine's build limits, tensor parallel size and
                                    quantization (config.json), its GPU architecture
                                    (build_metadata.json) and its rank files

src/config/resolve.py turns these facts into settings; nothing here knows a variable name.
Standard library only, so the bootstrap imports it in milliseconds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A quantization or algorithm name as the settings take it: one word.
_WORD = re.compile(r"[A-Za-z0-9_.-]+", re.ASCII)
# The build limits of an engine's config.json (build_config) that the stack reads.
ENGINE_LIMITS = ("max_seq_len", "max_batch_size", "max_num_tokens", "max_input_len",
                 "max_output_len")


class ConfigError(ValueError):
    """A config file is present but does not say what it must."""


@dataclass(frozen=True)
class Engine:
    """The facts of a TensorRT-LLM engine directory."""

    limits: dict[str, int] = field(default_factory=dict)
    tp_size: int | None = None
    quant_algo: str | None = None
    sm_arch: str | None = None
    ranks: int = 0


def _read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from a file; ConfigError naming the file and why when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable {what}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a readable {what}: not a JSON object")
    return data


def _object(value: object) -> dict[str, Any]:
    """A JSON object, or an empty one for anything else (a missing or null section)."""
    return value if isinstance(value, dict) else {}


def _positive(value: object) -> int | None:
    """A positive whole number from JSON (never a boolean); None otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def sm_arch(value: object) -> str | None:
    """An architecture as the stack writes it: 'sm90' from sm90, sm_90 or 90; None otherwise."""
    text = str(value or "").strip().replace("sm_", "sm")
    text = f"sm{text}" if text.isascii() and text.isdigit() else text
    return text if re.fullmatch(r"sm[0-9]{2,3}", text, re.ASCII) else None


def model_quantization(model_dir: Path) -> str | None:
    """quantization_config.quant_method of the model's config.json; None when there is none.

    A config.json that cannot be read counts as none (the start-up manifest check names broken
    files); a quant_method that is not one word is a ConfigError.
    """
    try:
        config = _read_json(model_dir / "config.json", "model config")
    except ConfigError:
        return None
    quant = _object(config.get("quantization_config")).get("quant_method")
    if quant in (None, ""):
        return None
    if not isinstance(quant, str) or not _WORD.fullmatch(quant):
        shown = "".join(c if c.isprintable() else "?" for c in str(quant))
        raise ConfigError(f"{model_dir / 'config.json'} names quantization {shown!r}, not one word")
    return quant


def read_engine(engine_dir: Path) -> Engine | None:
    """The engine in a directory; None without config.json; ConfigError when it is unreadable."""
    config_file = engine_dir / "config.json"
    if not config_file.is_file():
        return None
    config = _read_json(config_file, "engine config")
    build = _object(config.get("build_config"))
    pretrained = _object(config.get("pretrained_config"))
    quant = _object(pretrained.get("quantization")).get("quant_algo")
    limits = {name: v for name in ENGINE_LIMITS if (v := _positive(build.get(name))) is not None}
    arch = None
    metadata = engine_dir / "build_metadata.json"
    if metadata.is_file():
        arch = sm_arch(_read_json(metadata, "engine build metadata").get("sm_arch"))
    return Engine(
        limits=limits,
        tp_size=_positive(_object(pretrained.get("mapping")).get("tp_size")),
        quant_algo=quant if isinstance(quant, str) and _WORD.fullmatch(quant) else None,
        sm_arch=arch,
        ranks=sum(1 for p in engine_dir.glob("rank*.engine") if p.is_file()),
    )
