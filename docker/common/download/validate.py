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
  CHAT_MODEL_REVISION, TOOL_MODEL_REVISION, TRT_ENGINE_REVISION  (--chat-model-revision …)
                                        branch, tag or commit of the model it goes with
  HF_ENDPOINT       --hf-endpoint       the Hub or a mirror: an http(s) URL
  BASE_IMAGE        --base-image        an image reference ([registry/]name[:tag][@digest])
  VLLM_DEVICE       --vllm-device       cuda | cpu (vllm stack only; default cuda)
  ROOT_DIR          --root-dir          repository holding src/config (default: this file's repo)
  ALLOW_UNLISTED_MODELS=1  --allow-unlisted  accept a well-formed repo id that is not
                                             allowlisted (a private mirror), with a warning

A Hub repo id follows huggingface_hub's validate_repo_id, with an owner required; a local
directory must hold what the image's download step requires of it; the TensorRT-LLM engine
repository is downloaded, so it passes the same allowlist as a chat model. Every pattern is
ASCII-only (re.ASCII).

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
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

PREFIX = "[validate]"
DEFAULT_ROOT = Path(__file__).resolve().parents[3]
REVISION_VARS = ("CHAT_MODEL_REVISION", "TOOL_MODEL_REVISION", "TRT_ENGINE_REVISION")


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
    revisions: dict[str, str] = field(default_factory=dict)  # CHAT_MODEL_REVISION → value
    hf_endpoint: str = ""
    base_image: str = ""
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


# The rules live in pyhelpers (standard library only): model_ref.py (local model directories,
# the TRT engine label; shared with the download entry points) and value_rules.py (repo ids,
# revisions, HF_ENDPOINT, BASE_IMAGE).
@functools.cache
def pyhelper(name: str) -> ModuleType:
    """Import pyhelpers/<name>.py from this file's repository, without sys.path."""
    path = DEFAULT_ROOT / "pyhelpers" / f"{name}.py"
    if not path.is_file():
        raise ConfigError(f"{str(path)!r} is missing; run the validator from a complete checkout")
    return _load_file(path, f"pyhelpers_{name}")


def check_model(
    name: str, value: str, allowed: tuple[str, ...], what: str, allow_unlisted: bool,
    kind: str | None = None,
) -> Result:
    """Check one model variable: a local model directory of `kind`, or an allowlisted repo id.

    `kind` is "chat" or "tool" where a local directory may stand for the model; None: a repo id
    only. A value starting with '/' is a path: it must be a directory holding what the image's
    download step requires of a model of that kind (pyhelpers/model_ref.py).
    """
    if not value:
        return Result("fail", f"{name} is empty; set it to one of the {what}: {', '.join(allowed)}")
    if kind is not None and value.startswith("/"):
        return _check_local_dir(name, value, kind)
    rules = pyhelper("value_rules")
    problem = rules.repo_id_problem(value)
    if problem:
        local = ", or an absolute path to a model directory" if kind else ""
        return Result("fail", f"{name} {value!r} {problem}: {rules.REPO_ID_HELP}{local}")
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


def _check_local_dir(name: str, value: str, kind: str) -> Result:
    """Check a local model directory given by absolute path, as the image's bake would."""
    ref = pyhelper("model_ref")
    problem = ref.local_dir_problem(value)
    if problem:
        return Result("fail", f"{name} {value!r} {problem}: give an existing model directory "
                              "by an absolute path without '..', or a Hub repo id (owner/name, "
                              "example: Qwen/Qwen3-8B-AWQ)")
    problem = ref.model_dir_problem(Path(value), kind)
    if problem:
        return Result("fail", f"{name} {value!r} {problem}; the image's build would stop there")
    return Result("ok", f"{name} {value!r} is a local {kind} model directory")


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
                "tool",
            )
        )
    results.extend(_check_values(settings))
    return results


def _check_values(settings: Settings) -> list[Result]:
    """Check the revisions of the deployed models, HF_ENDPOINT and BASE_IMAGE, when set."""
    used = []
    if settings.deploy_mode in ("chat", "both"):
        used.append("TRT_ENGINE_REVISION" if settings.engine == "trt" else "CHAT_MODEL_REVISION")
    if settings.deploy_mode in ("tool", "both"):
        used.append("TOOL_MODEL_REVISION")
    rules = pyhelper("value_rules")
    checks = [(name, settings.revisions.get(name, ""), rules.revision_problem,
               rules.REVISION_HELP) for name in used]
    checks += [("HF_ENDPOINT", settings.hf_endpoint, rules.endpoint_problem, rules.ENDPOINT_HELP),
               ("BASE_IMAGE", settings.base_image, rules.image_ref_problem, rules.IMAGE_REF_HELP)]
    results = []
    for name, value, problem_of, help_text in checks:
        problem = problem_of(value) if value else None
        if problem:
            results.append(Result("fail", f"{name} {value!r} {problem}: {help_text}"))
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
    what = f"{settings.engine} chat allowlist"
    if settings.engine == "trt" and settings.chat_model.startswith("/"):
        return [
            Result(
                "fail",
                f"CHAT_MODEL {settings.chat_model!r} is a local path, which only ENGINE=vllm "
                "can bake; TensorRT-LLM takes the tokenizer and engine from TRT_ENGINE_REPO "
                f"(one of: {', '.join(allowed)})",
            )
        ]
    kind = "chat" if settings.engine == "vllm" else None
    results = [
        check_model("CHAT_MODEL", settings.chat_model, allowed, what, settings.allow_unlisted, kind)
    ]
    if settings.engine != "trt":
        return results
    # The engine repo is what the image downloads: the same policy as a chat model.
    repo = settings.trt_engine_repo or settings.chat_model
    results.append(check_model("TRT_ENGINE_REPO", repo, allowed, what, settings.allow_unlisted))
    label, ref = settings.trt_engine_label, pyhelper("model_ref")
    if not label:
        results.append(
            Result("fail", f"TRT_ENGINE_LABEL is required with ENGINE=trt: {ref.TRT_LABEL_HELP}")
        )
    elif not ref.is_trt_label(label):
        results.append(
            Result("fail", f"TRT_ENGINE_LABEL {label!r} is not valid: {ref.TRT_LABEL_HELP}")
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
        *REVISION_VARS,
        "HF_ENDPOINT",
        "BASE_IMAGE",
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
            revisions={var: getattr(args, var.lower()) for var in REVISION_VARS},
            hf_endpoint=args.hf_endpoint,
            base_image=args.base_image,
            vllm_device=args.vllm_device,
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
