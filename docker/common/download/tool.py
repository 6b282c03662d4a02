#!/usr/bin/env python3
"""Bake the tool model into the image: TOOL_MODEL (Hub repo id or local dir) → TOOL_MODEL_PATH.

Environment:
  TOOL_MODEL           Hub repo id (owner/name); an absolute path to a local directory, or
                       local:<name> (the build context's local/tool/, under LOCAL_MODELS_DIR),
                       copied instead of downloaded; empty: skip
  TOOL_MODEL_PATH      where the model goes (required; set by the models stage
                       and, for main.sh --download-models, by src/config)
  TOOL_MODEL_REVISION  branch, tag or commit (default main)
  HF_ENDPOINT, HF_TOKEN, HF_TOKEN_FILE, HF_DOWNLOAD_RETRIES  see docker/common/README.md
Afterwards config.json and weights (*.safetensors or pytorch_model.bin) must be present.
Run with PYTHONPATH set to the repository root (the models stage sets PYTHONPATH=/build).
"""

import os
import sys

from utils import (
    MODEL_FILES,
    bake_model,
    check_target_dir,
    log_skip,
    log_success,
    run_entry,
    target_dir,
    verify_files_exist,
)

PREFIX = "[tool-model]"
REQUIRED = list(MODEL_FILES["tool"])


def main() -> None:
    """Download or copy the tool model named by the environment, then check its files."""
    model = os.environ.get("TOOL_MODEL", "").strip()
    if not model:
        log_skip(PREFIX, "TOOL_MODEL is empty: no tool model baked in")
        return
    target = target_dir("TOOL_MODEL_PATH")
    revision = os.environ.get("TOOL_MODEL_REVISION", "").strip() or None
    check_target_dir(target, "TOOL_MODEL_PATH")
    bake_model(model, target, "tool", revision, PREFIX)
    files = verify_files_exist(target, REQUIRED)
    log_success(PREFIX, f"tool model ready in {target}: {', '.join(files)}")


if __name__ == "__main__":
    sys.exit(run_entry(main, PREFIX))
