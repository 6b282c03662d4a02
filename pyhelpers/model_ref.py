"""What a model reference names: a local directory, a build-context copy, or a Hub repo.

One rule for each, shared by the build-host validator (docker/common/download/validate.py,
which loads this file by path: standard library only, no pyhelpers imports) and the build-time
download entry points:
- a local model directory is an absolute path, without '..', to an existing directory;
- the build passes a local directory to Docker as the neutral value "local:<basename>" (never
  the host path): the build context holds the directory under local/<kind>/, and the models
  stage copies it to LOCAL_MODELS_DIR/<kind> (default /build/local/<kind>);
- a TensorRT-LLM engine label is sm{arch}_trt-llm-{version}_cuda{version}.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

LOCAL_REF_PREFIX = "local:"
LOCAL_MODELS_DIR_DEFAULT = "/build/local"
TRT_LABEL_RE = re.compile(
    r"sm\d{2,3}[a-z]?_trt-llm-\d+(?:\.\d+){1,3}(?:(?:rc|\.post|\.dev)\d+)?_cuda\d+\.\d+(?:\.\d+)?"
)
TRT_LABEL_HELP = (
    "use sm{arch}_trt-llm-{version}_cuda{version} (example: sm90_trt-llm-0.17.0_cuda12.8)"
)


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
    path = Path(value)
    return path.is_absolute() and ".." not in path.parts and path.is_dir()


def is_trt_label(value: str) -> bool:
    """Return True when `value` is a valid TensorRT-LLM engine label."""
    return TRT_LABEL_RE.fullmatch(value) is not None


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
    if is_local_dir(value):
        return Path(value)
    if value.startswith("/") or value.startswith("."):
        raise ValueError(f"{value!r} is not an existing directory given by an absolute path "
                         "without '..'")
    return None
