#!/usr/bin/env python3
"""Bake one pre-built TensorRT-LLM engine into the image, flattened into TRT_ENGINE_DIR.

Only trt-llm/engines/<TRT_ENGINE_LABEL>/** of TRT_ENGINE_REPO is downloaded; its content lands
directly in TRT_ENGINE_DIR. Afterwards rank*.engine, config.json and build_metadata.json (with
sm_arch) must be there. A label the repo lacks fails with the labels it has. Run again into a
directory that holds this label at the same commit (a volume filled before), it fetches nothing.

Environment:
  TRT_ENGINE_REPO      Hub repo id (owner/name); required
  TRT_ENGINE_LABEL     engine folder under trt-llm/engines/; required
                       (e.g. sm90_trt-llm-1.2.1_cuda12.9)
  TRT_ENGINE_REVISION  branch, tag or commit (default main)
  TRT_ENGINE_DIR       where the engine goes (required; set by the models stage
                       and, for main.sh --download-models, by src/config)
  HF_ENDPOINT, HF_TOKEN, HF_TOKEN_FILE, HF_DOWNLOAD_RETRIES  see docker/common/README.md
Run with PYTHONPATH set to the repository root (the models stage sets PYTHONPATH=/build).
"""

import json
import os
import shutil
import sys
from pathlib import Path

from utils import (
    MANIFEST_NAME,
    TRT_LABEL_HELP,
    DownloadError,
    download_lock,
    download_snapshot,
    is_trt_label,
    list_subfolders,
    log_success,
    manifest_matches,
    prune_unlisted,
    read_manifest,
    rebase_manifest,
    resolve_commit,
    run_entry,
    target_dir,
    verify_files_exist,
    write_manifest,
)

PREFIX = "[trt-engine]"
ENGINES_ROOT = "trt-llm/engines"
REQUIRED = ["rank*.engine", "config.json", "build_metadata.json"]


def read_settings() -> tuple[str, str, str | None, Path]:
    """Return repo, label, revision and target dir from the environment; ValueError if invalid."""
    repo = os.environ.get("TRT_ENGINE_REPO", "").strip()
    label = os.environ.get("TRT_ENGINE_LABEL", "").strip()
    if not repo:
        raise ValueError("TRT_ENGINE_REPO is empty; set it to the Hub repo holding "
                         f"{ENGINES_ROOT}/<label>/ (owner/name)")
    if not is_trt_label(label):
        raise ValueError(f"TRT_ENGINE_LABEL {label!r} is not valid: {TRT_LABEL_HELP} (a folder "
                         f"under {ENGINES_ROOT}/ in {repo})")
    revision = os.environ.get("TRT_ENGINE_REVISION", "").strip() or None
    target = target_dir("TRT_ENGINE_DIR")
    return repo, label, revision, target


def flatten_into(staging: Path, prefix: str, target: Path) -> None:
    """Move the files under `staging`/`prefix` into `target`, keeping paths below `prefix`."""
    source = staging / prefix
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        dest = target / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), dest)


def check_build_metadata(target: Path) -> str:
    """Return sm_arch from build_metadata.json; DownloadError when absent or unreadable."""
    path = target / "build_metadata.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DownloadError(f"{path} is not valid JSON: {exc}") from None
    sm_arch = meta.get("sm_arch") if isinstance(meta, dict) else None
    if not sm_arch:
        raise DownloadError(f"{path} has no 'sm_arch'; the engine's GPU architecture is unknown")
    return str(sm_arch)


def main() -> None:
    """Download the labelled engine, flatten it into TRT_ENGINE_DIR and check it."""
    repo, label, revision, target = read_settings()
    labels = list_subfolders(repo, ENGINES_ROOT, revision=revision)
    if label not in labels:
        have = ", ".join(labels) if labels else f"none (no {ENGINES_ROOT}/ folder)"
        raise DownloadError(f"TRT_ENGINE_LABEL {label!r} is not in {repo}@{revision or 'main'}; "
                            f"labels there: {have}")
    with download_lock(target, PREFIX):
        commit = resolve_commit(repo, revision, log_prefix=PREFIX)
        current = {"repo_id": repo, "commit": commit,
                   "allow_patterns": [f"{ENGINES_ROOT}/{label}/*"],
                   "engine_label": label}
        if manifest_matches(target, current) is None:
            fetch_flattened(repo, revision, label, target)
        else:
            log_success(PREFIX, f"engine {label} ({commit[:12]}) is already in {target}: "
                                "nothing to download")
    verify_files_exist(target, REQUIRED)
    sm_arch = check_build_metadata(target)
    log_success(PREFIX, f"engine {label} ({sm_arch}) ready in {target}")


def fetch_flattened(repo: str, revision: str | None, label: str, target: Path) -> None:
    """Download the label's folder of the repo beside `target`, then move it into `target` with
    its manifest (recording the label); files an earlier engine left there are removed.

    The staging directory, .<name>.download beside `target`, is removed only after success, so
    an interrupted download resumes its partial files on the next run.
    """
    prefix = f"{ENGINES_ROOT}/{label}"
    staging = target.parent / f".{target.name}.download"
    download_snapshot(repo, staging, revision=revision, allow_patterns=[f"{prefix}/*"],
                      log_prefix=PREFIX)
    manifest = rebase_manifest(read_manifest(staging), prefix)
    target.mkdir(parents=True, exist_ok=True)
    (target / MANIFEST_NAME).unlink(missing_ok=True)
    flatten_into(staging, prefix, target)
    shutil.rmtree(staging)
    prune_unlisted(target, (entry["path"] for entry in manifest["files"]), PREFIX)
    write_manifest(target, {**manifest, "engine_label": label})


if __name__ == "__main__":
    sys.exit(run_entry(main, PREFIX))
