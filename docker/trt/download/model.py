#!/usr/bin/env python3
"""Bake the TRT stack's tokenizer and config into the image: TRT_ENGINE_REPO → CHAT_MODEL_PATH.

Everything in the repo except README*, .gitattributes and trt-llm/** (the engines, which
engine.py fetches) is downloaded.

Environment:
  TRT_ENGINE_REPO      Hub repo id (owner/name) holding the model files and the engines; required
  TRT_ENGINE_REVISION  branch, tag or commit (default main)
  CHAT_MODEL_PATH      where the files go (required; set by the models stage
                       and, for main.sh --download-models, by src/config)
  HF_ENDPOINT, HF_TOKEN, HF_TOKEN_FILE, HF_DOWNLOAD_RETRIES  see docker/common/README.md
Run with PYTHONPATH set to the repository root (the models stage sets PYTHONPATH=/build).
"""

import os
import sys

from utils import (
    check_target_dir,
    download_snapshot,
    log_success,
    run_entry,
    target_dir,
    verify_files_exist,
)

PREFIX = "[trt-model]"
IGNORE = ["README*", ".gitattributes", "trt-llm/**"]
REQUIRED = ["config.json", "tokenizer.json|tokenizer.model|vocab.json|vocab.txt"]


def main() -> None:
    """Download the model files (not the engines) of TRT_ENGINE_REPO and check them."""
    repo = os.environ.get("TRT_ENGINE_REPO", "").strip()
    if not repo:
        raise ValueError("TRT_ENGINE_REPO is empty; set it to the Hub repo holding the "
                         "tokenizer and trt-llm/engines/<label>/ (owner/name)")
    target = target_dir("CHAT_MODEL_PATH")
    revision = os.environ.get("TRT_ENGINE_REVISION", "").strip() or None
    check_target_dir(target, "CHAT_MODEL_PATH")
    download_snapshot(repo, target, revision=revision, ignore_patterns=IGNORE, log_prefix=PREFIX)
    verify_files_exist(target, REQUIRED)
    log_success(PREFIX, f"tokenizer and config ready in {target}")


if __name__ == "__main__":
    sys.exit(run_entry(main, PREFIX))
