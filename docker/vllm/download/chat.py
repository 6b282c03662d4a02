#!/usr/bin/env python3
"""Bake the vLLM chat model into the image: CHAT_MODEL → CHAT_MODEL_PATH.

Environment:
  CHAT_MODEL           Hub repo id (owner/name); an absolute path to a local directory, or
                       local:<name> (the build context's local/chat/, under LOCAL_MODELS_DIR),
                       copied instead of downloaded; required
  CHAT_MODEL_PATH      where the model goes (required; set by the models stage
                       and, for main.sh --download-models, by src/config)
  CHAT_MODEL_REVISION  branch, tag or commit (default main)
  HF_ENDPOINT, HF_TOKEN, HF_TOKEN_FILE, HF_DOWNLOAD_RETRIES  see docker/common/README.md
Afterwards config.json, a tokenizer and weights must be present; the quantization method of
config.json is recorded in the manifest (an unquantized model is a warning).
Run with PYTHONPATH set to the repository root (the models stage sets PYTHONPATH=/build).
"""

import json
import os
import sys
from pathlib import Path

from utils import (
    MODEL_FILES,
    DownloadError,
    bake_model,
    check_target_dir,
    log_success,
    log_warn,
    read_manifest,
    run_entry,
    target_dir,
    verify_files_exist,
    write_manifest,
)

PREFIX = "[vllm-model]"
REQUIRED = list(MODEL_FILES["chat"])


def quant_method(target: Path) -> str | None:
    """Return quantization_config.quant_method from config.json, or None when unquantized."""
    try:
        config = json.loads((target / "config.json").read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DownloadError(f"{target / 'config.json'} is not valid JSON: {exc}") from None
    quant = config.get("quantization_config") if isinstance(config, dict) else None
    method = quant.get("quant_method") if isinstance(quant, dict) else None
    return str(method) if method else None


def main() -> None:
    """Download the chat model named by the environment, check it and record its quantization."""
    model = os.environ.get("CHAT_MODEL", "").strip()
    if not model:
        raise ValueError("CHAT_MODEL is empty; set it to the Hub repo of the chat model "
                         "(owner/name) or a local directory")
    target = target_dir("CHAT_MODEL_PATH")
    revision = os.environ.get("CHAT_MODEL_REVISION", "").strip() or None
    check_target_dir(target, "CHAT_MODEL_PATH")
    bake_model(model, target, "chat", revision, PREFIX)
    verify_files_exist(target, REQUIRED)
    method = quant_method(target)
    manifest = read_manifest(target)
    if manifest.get("quant_method", "") != method:  # a current volume's manifest stays as it is
        write_manifest(target, {**manifest, "quant_method": method})
    if method is None:
        log_warn(PREFIX, f"{model} has no quantization_config.quant_method in config.json: "
                         "vLLM serves it unquantized, which needs the most GPU memory")
    log_success(PREFIX, f"chat model ready in {target} (quantization: {method or 'none'})")


if __name__ == "__main__":
    sys.exit(run_entry(main, PREFIX))
