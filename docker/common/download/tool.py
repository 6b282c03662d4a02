#!/usr/bin/env python3
"""Bake the tool model into the image: TOOL_MODEL (Hub repo id or local dir) → TOOL_MODEL_PATH.

Environment:
  TOOL_MODEL           Hub repo id (owner/name) or a local directory; empty: skip
  TOOL_MODEL_PATH      where the model goes (default /opt/models/tool)
  TOOL_MODEL_REVISION  branch, tag or commit (default main)
  HF_ENDPOINT, HF_TOKEN, HF_TOKEN_FILE, HF_DOWNLOAD_RETRIES  see docker/common/README.md
Afterwards config.json and weights (*.safetensors or pytorch_model.bin) must be present.
Run with PYTHONPATH set to the repository root (the images set PYTHONPATH=/app).
"""

import os
import shutil
import sys
from pathlib import Path

from utils import download_snapshot, log_skip, log_success, run_entry, verify_files_exist

from pyhelpers.manifest import build_manifest, list_files, write_manifest

PREFIX = "[tool-model]"
REQUIRED = ["config.json", "*.safetensors|pytorch_model.bin"]


def copy_local_model(src: Path, target: Path) -> None:
    """Copy a local model directory into `target` and record it in a manifest."""
    shutil.copytree(src, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".cache"))
    source = {"repo_id": None, "local_source": str(src.resolve()), "revision": None, "commit": None}
    write_manifest(target, build_manifest(target, list_files(target), source))


def main() -> None:
    """Download or copy the tool model named by the environment, then check its files."""
    model = os.environ.get("TOOL_MODEL", "").strip()
    target = Path(os.environ.get("TOOL_MODEL_PATH") or "/opt/models/tool")
    if not model:
        log_skip(PREFIX, "TOOL_MODEL is empty: no tool model baked in")
        return
    if Path(model).is_dir():
        copy_local_model(Path(model), target)
    else:
        revision = os.environ.get("TOOL_MODEL_REVISION", "").strip() or None
        download_snapshot(model, target, revision=revision, log_prefix=PREFIX)
    files = verify_files_exist(target, REQUIRED)
    log_success(PREFIX, f"tool model ready in {target}: {', '.join(files)}")


if __name__ == "__main__":
    sys.exit(run_entry(main, PREFIX))
