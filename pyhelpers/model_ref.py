"""What a model reference names: a local directory, a build-context copy, or a Hub repo.

One rule for each, shared by the build-host validator (docker/common/download/validate.py,
which loads this file by path: standard library only, no pyhelpers imports) and the build-time
download entry points:
- a local model directory is an absolute path, without '..', to an existing directory that
  holds the files its kind needs (MODEL_FILES: what chat.py and tool.py require after a bake);
- the build passes a local directory to Docker as the neutral value "local:<basename>" (never
  the host path): the build context holds the directory under local/<kind>/, and the models
  stage copies it to LOCAL_MODELS_DIR/<kind> (default /build/local/<kind>);
- a TensorRT-LLM engine label is sm{arch}_trt-llm-{version}_cuda{version}.
Every pattern is ASCII-only (re.ASCII): without it '\\d' also takes other scripts' digits.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from pathlib import Path

LOCAL_REF_PREFIX = "local:"
LOCAL_MODELS_DIR_DEFAULT = "/build/local"
TRT_LABEL_RE = re.compile(
    r"sm\d{2,3}[a-z]?_trt-llm-\d+(?:\.\d+){1,3}(?:(?:rc|\.post|\.dev)\d+)?_cuda\d+\.\d+(?:\.\d+)?",
    re.ASCII,
)
TRT_LABEL_HELP = (
    "use sm{arch}_trt-llm-{version}_cuda{version} (example: sm90_trt-llm-0.17.0_cuda12.8)"
)
# The files a baked model of each kind must hold; "a|b" accepts either (fnmatch patterns on
# paths relative to the model directory).
MODEL_FILES: dict[str, tuple[str, ...]] = {
    "chat": ("config.json", "tokenizer.json|tokenizer.model|vocab.json|vocab.txt",
             "*.safetensors|pytorch_model*.bin"),
    "tool": ("config.json", "*.safetensors|pytorch_model.bin"),
}


def local_dir_problem(value: str) -> str | None:
    """Return why `value` is not an absolute path without '..' to a directory, or None."""
    path = Path(value)
    if not path.is_absolute():
        return "is not an absolute path"
    if ".." in path.parts:
        return "holds '..'"
    if not path.exists():
        return "does not exist"
    if not path.is_dir():
        return "is not a directory"
    return None


def target_dir(name: str) -> Path:
    """The directory a download fills, from its variable: the Dockerfile's models stage sets it at
    build time, the bootstrap (src/config) for `main.sh --download-models`; no default here."""
    value = os.environ.get(name, "").strip()
    if not value:
        raise ValueError(f"{name} is not set: the directory to download into (the Dockerfile's "
                         "models stage sets it; main.sh --download-models gets it from src/config)")
    return Path(value)


def is_local_dir(value: str) -> bool:
    """Return True when `value` is an absolute path without '..' to an existing directory."""
    return local_dir_problem(value) is None


def is_trt_label(value: str) -> bool:
    """Return True when `value` is a valid TensorRT-LLM engine label."""
    return TRT_LABEL_RE.fullmatch(value) is not None


def relative_files(root: Path) -> list[str]:
    """Return the files under `root` as sorted POSIX relative paths, without .cache/."""
    files = sorted(p.relative_to(root).as_posix() for p in Path(root).rglob("*") if p.is_file())
    return [f for f in files if not f.startswith(".cache/")]


def matching(files: list[str], pattern: str) -> list[str]:
    """Return the files one required pattern matches ("a|b": either alternative)."""
    return [f for f in files if any(fnmatch.fnmatch(f, alt) for alt in pattern.split("|"))]


def model_dir_problem(directory: Path, kind: str) -> str | None:
    """Return what a model directory of `kind` lacks for a bake, or None when it is complete.

    The same files chat.py and tool.py require afterwards (MODEL_FILES), and a config.json that
    holds a JSON object.
    """
    files = relative_files(directory)
    missing = [pattern for pattern in MODEL_FILES[kind] if not matching(files, pattern)]
    if missing:
        needs = ", ".join(MODEL_FILES[kind])
        return f"holds no {', no '.join(missing)} (a {kind} model needs {needs})"
    try:
        config = json.loads((Path(directory) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"has a config.json that is not readable JSON ({exc})"
    if not isinstance(config, dict):
        return "has a config.json that is not a JSON object"
    return None


def local_model_dir(value: str, kind: str) -> Path | None:
    """Return the directory a model reference names, or None when it is a Hub repo id.

    `kind` is "chat" or "tool": a "local:<name>" reference resolves to LOCAL_MODELS_DIR/<kind>,
    which must exist (ValueError otherwise); an absolute path must pass is_local_dir.
    """
    if value.startswith(LOCAL_REF_PREFIX):
        base = os.environ.get("LOCAL_MODELS_DIR") or LOCAL_MODELS_DIR_DEFAULT
        path = Path(base) / kind
        if not path.is_dir():
            raise ValueError(f"{value!r} names a local {kind} model, but {str(path)!r} is not a "
                             "directory; the build context must hold it (docker/build.sh copies "
                             "a local model directory into it)")
        return path
    if value.startswith(("/", ".")):
        problem = local_dir_problem(value)
        if problem:
            raise ValueError(f"local model directory {value!r} {problem}; give an existing "
                             "directory by an absolute path without '..'")
        return Path(value)
    return None
