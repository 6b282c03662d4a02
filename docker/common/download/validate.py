#!/usr/bin/env python3
"""Check the models of a build against the allowlists in src/config/models.py.

Runs on the build host with the standard library only. Every setting comes from
the environment or from the flag of the same name (the flag wins):

  ENGINE            --engine            vllm | trt (needed when a chat model is deployed)
  DEPLOY_MODE       --deploy-mode       chat | tool | both
  CHAT_MODEL        --chat-model        allowlisted repo id, or (vllm) an absolute directory path
  TOOL_MODEL        --tool-model        allowlisted repo id, or an absolute path to a directory
  TRT_ENGINE_REPO   --trt-engine-repo   repo with pre-built engines (default: CHAT_MODEL)
  TRT_ENGINE_LABEL  --trt-engine-label  sm{arch}_trt-llm-{version}_cuda{version}
  VLLM_DEVICE       --vllm-device       cuda | cpu (vllm stack only; default cuda)
  ROOT_DIR          --root-dir          repository holding src/config (default: this file's repo)
  ALLOW_UNLISTED_MODELS=1  --allow-unlisted  accept a well-formed repo id that is not
                                             allowlisted (a private mirror), with a warning

Prints one "[validate] ✓ …", "⚠ …" or "✗ …" line per check on stderr; exits 0 when
all pass, 1 otherwise. `--list engines` or `--list deploy-modes` prints the valid values
(space-separated, from src/config/models.py) on stdout instead, for the build scripts.
LOG_LEVEL=debug shows a traceback for unexpected errors.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import importlib.util
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

PREFIX = "[validate]"
REPO_ID_MAX_LEN = 96
_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?"
REPO_ID_RE = re.compile(rf"{_PART}/{_PART}")
REPO_ID_HELP = (
    "use owner/name with letters, digits, '-', '_' and '.', no '--' or '..', "
    f"at most {REPO_ID_MAX_LEN} characters (example: Qwen/Qwen3-8B-AWQ)"
)
DEFAULT_ROOT = Path(__file__).resolve().parents[3]


class ConfigError(Exception):
    """The allowlists could not be loaded from ROOT_DIR."""


@dataclass(frozen=True)
class Result:
    """The outcome of one check: 'ok', 'warn' or 'fail', and its message."""

    status: str
    message: str


@dataclass(frozen=True)
class Settings:
    """The values to validate, as read from flags and environment."""

    engine: str
    deploy_mode: str
    chat_model: str
    tool_model: str
    trt_engine_repo: str
    trt_engine_label: str
    allow_unlisted: bool
    vllm_device: str = ""


def _load_file(path: Path, name: str) -> ModuleType:
    """Import one standard-library-only Python file as module `name`, without sys.path."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_models(root_dir: Path) -> ModuleType:
    """Import src/config/models.py from root_dir without touching sys.path."""
    path = root_dir / "src" / "config" / "models.py"
    if not path.is_file():
        raise ConfigError(
            f"ROOT_DIR {str(root_dir)!r} holds no src/config/models.py; "
            "set ROOT_DIR to the repository root"
        )
    return _load_file(path, "src_config_models")


# The rules for a local model directory and a TRT engine label live in pyhelpers/model_ref.py
# (standard library only), shared with the download entry points.
@functools.cache
def model_ref() -> ModuleType:
    """Import pyhelpers/model_ref.py from this file's repository, without sys.path."""
    path = DEFAULT_ROOT / "pyhelpers" / "model_ref.py"
    if not path.is_file():
        raise ConfigError(f"{str(path)!r} is missing; run the validator from a complete checkout")
    return _load_file(path, "pyhelpers_model_ref")


def repo_id_problem(value: str) -> str | None:
    """Return why value is not a valid Hub repo id, or None when it is valid."""
    if len(value) > REPO_ID_MAX_LEN:
        return f"is {len(value)} characters long"
    if not REPO_ID_RE.fullmatch(value) or "--" in value or ".." in value:
        return "is not a valid Hugging Face repo id"
    return None


def check_model(
    name: str, value: str, allowed: tuple[str, ...], what: str, allow_unlisted: bool
) -> Result:
    """Check one model variable: a local directory, or a well-formed allowlisted repo id."""
    if not value:
        return Result("fail", f"{name} is empty; set it to one of the {what}: {', '.join(allowed)}")
    if model_ref().is_local_dir(value):
        return Result("ok", f"{name} {value!r} is a local directory")
    problem = repo_id_problem(value)
    if problem:
        return Result(
            "fail",
            f"{name} {value!r} {problem}: {REPO_ID_HELP}, or an absolute path to a model directory",
        )
    if value in allowed:
        return Result("ok", f"{name} {value!r} is allowlisted ({what})")
    if allow_unlisted:
        return Result(
            "warn", f"{name} {value!r} is not in the {what}; accepted (ALLOW_UNLISTED_MODELS=1)"
        )
    close = difflib.get_close_matches(value, allowed, n=3, cutoff=0.5)
    hint = f"did you mean: {', '.join(close)}?" if close else f"allowed: {', '.join(allowed)}"
    return Result(
        "fail", f"{name} {value!r} is not in the {what}; {hint} (list: src/config/models.py)"
    )


def validate(settings: Settings, models: ModuleType) -> list[Result]:
    """Run every check that applies to the deploy mode and return the results."""
    modes: tuple[str, ...] = models.DEPLOY_MODES
    if settings.deploy_mode not in modes:
        return [
            Result(
                "fail",
                f"DEPLOY_MODE {settings.deploy_mode!r} is not valid; "
                f"use one of: {', '.join(modes)}",
            )
        ]
    results: list[Result] = [Result("ok", f"DEPLOY_MODE {settings.deploy_mode!r}")]
    if settings.vllm_device:
        results.append(_check_vllm_device(settings, models))
    if settings.deploy_mode in ("chat", "both"):
        results.extend(_check_chat(settings, models))
    if settings.deploy_mode in ("tool", "both"):
        results.append(
            check_model(
                "TOOL_MODEL",
                settings.tool_model,
                models.TOOL_MODELS,
                "tool-model allowlist",
                settings.allow_unlisted,
            )
        )
    return results


def _check_vllm_device(settings: Settings, models: ModuleType) -> Result:
    """Check VLLM_DEVICE: a known device, and anything but cuda only for the vllm stack."""
    devices: tuple[str, ...] = models.VLLM_DEVICES
    device = settings.vllm_device
    if device not in devices:
        return Result(
            "fail", f"VLLM_DEVICE {device!r} is not valid; use one of: {', '.join(devices)}"
        )
    if device != devices[0] and (settings.engine != "vllm" or settings.deploy_mode == "tool"):
        return Result(
            "fail",
            f"VLLM_DEVICE {device!r} builds the vllm stack's {device} flavor, not this build "
            f"(ENGINE={settings.engine or '<unset>'}, DEPLOY_MODE={settings.deploy_mode}); use "
            "ENGINE=vllm with DEPLOY_MODE=chat or both, or unset VLLM_DEVICE",
        )
    return Result("ok", f"VLLM_DEVICE {device!r}")


def _check_chat(settings: Settings, models: ModuleType) -> list[Result]:
    """Check ENGINE, CHAT_MODEL and, for TensorRT-LLM, the engine repo and label."""
    engines: tuple[str, ...] = models.CHAT_ENGINES
    if settings.engine not in engines:
        return [
            Result(
                "fail", f"ENGINE {settings.engine!r} is not valid; use one of: {', '.join(engines)}"
            )
        ]
    allowed = models.chat_models_for_engine(settings.engine)
    if settings.engine == "trt" and model_ref().is_local_dir(settings.chat_model):
        return [
            Result(
                "fail",
                f"CHAT_MODEL {settings.chat_model!r} is a local directory, which only ENGINE=vllm "
                "can bake; TensorRT-LLM takes the tokenizer and engine from TRT_ENGINE_REPO "
                f"(one of: {', '.join(allowed)})",
            )
        ]
    results = [
        check_model(
            "CHAT_MODEL",
            settings.chat_model,
            allowed,
            f"{settings.engine} chat allowlist",
            settings.allow_unlisted,
        )
    ]
    if settings.engine != "trt":
        return results
    repo = settings.trt_engine_repo or settings.chat_model
    problem = repo_id_problem(repo) if repo else "is empty"
    if problem:
        results.append(Result("fail", f"TRT_ENGINE_REPO {repo!r} {problem}: {REPO_ID_HELP}"))
    else:
        results.append(Result("ok", f"TRT_ENGINE_REPO {repo!r}"))
    label = settings.trt_engine_label
    if not label:
        results.append(
            Result("fail", "TRT_ENGINE_LABEL is required with ENGINE=trt: "
                   f"{model_ref().TRT_LABEL_HELP}")
        )
    elif not model_ref().is_trt_label(label):
        results.append(
            Result("fail", f"TRT_ENGINE_LABEL {label!r} is not valid: {model_ref().TRT_LABEL_HELP}")
        )
    else:
        results.append(Result("ok", f"TRT_ENGINE_LABEL {label!r}"))
    return results


def parse_args(argv: list[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    """Parse the flags; each defaults to the environment variable of the same name."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for var in (
        "ENGINE",
        "DEPLOY_MODE",
        "CHAT_MODEL",
        "TOOL_MODEL",
        "TRT_ENGINE_REPO",
        "TRT_ENGINE_LABEL",
        "VLLM_DEVICE",
        "ROOT_DIR",
    ):
        flag = "--" + var.lower().replace("_", "-")
        parser.add_argument(flag, dest=var.lower(), default=environ.get(var, ""), metavar=var)
    parser.add_argument("--list", choices=("engines", "deploy-modes"), default="")
    parser.add_argument(
        "--allow-unlisted",
        action="store_true",
        default=environ.get("ALLOW_UNLISTED_MODELS", "") == "1",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Validate, print one line per check, return 0 when all pass and 1 otherwise."""
    args = parse_args(argv, os.environ)
    try:
        models = load_models(Path(args.root_dir) if args.root_dir else DEFAULT_ROOT)
        if args.list:
            values = models.CHAT_ENGINES if args.list == "engines" else models.DEPLOY_MODES
            print(" ".join(values))
            return 0
        settings = Settings(
            args.engine,
            args.deploy_mode,
            args.chat_model,
            args.tool_model,
            args.trt_engine_repo,
            args.trt_engine_label,
            args.allow_unlisted,
            args.vllm_device,
        )
        results = validate(settings, models)
    except (ConfigError, ValueError, AttributeError, SyntaxError) as exc:
        if os.environ.get("LOG_LEVEL") == "debug":
            raise
        print(f"{PREFIX} ✗ {exc}", file=sys.stderr)
        return 1
    marks = {"ok": "✓", "warn": "⚠", "fail": "✗"}
    for result in results:
        print(f"{PREFIX} {marks[result.status]} {result.message}", file=sys.stderr)
    return 1 if any(r.status == "fail" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
