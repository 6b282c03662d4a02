#!/usr/bin/env python3
"""Bake one pre-built TensorRT-LLM engine into the image, flattened into TRT_ENGINE_DIR.

Only trt-llm/engines/<TRT_ENGINE_LABEL>/** of TRT_ENGINE_REPO is downloaded, into a staging
directory beside TRT_ENGINE_DIR; once it holds rank*.engine, config.json and build_metadata.json
(with sm_arch), its content moves directly into TRT_ENGINE_DIR (nothing lands there otherwise).
A label the repo lacks fails with the labels it has; a repo without trt-llm/engines/ fails with
what it holds. Run again into a directory that holds this label at the same commit (a volume
filled before), it fetches nothing; an interrupted download resumes from the staging directory.

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
    check_target_dir,
    download_lock,
    download_snapshot,
    is_trt_label,
    list_folder,
    log_success,
    manifest_matches,
    matching,
    prune_unlisted,
    read_manifest,
    rebase_manifest,
    relative_files,
    resolve_commit,
    run_entry,
    target_dir,
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


def check_engine(engine: Path, where: str) -> str:
    """Return sm_arch of an engine folder; DownloadError naming what it lacks."""
    files = relative_files(engine)
    missing = [pattern for pattern in REQUIRED if not matching(files, pattern)]
    if missing:
        raise DownloadError(f"{where} holds no {', no '.join(missing)}; an engine folder needs "
                            f"{', '.join(REQUIRED)}")
    try:
        meta = json.loads((engine / "build_metadata.json").read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DownloadError(f"{where}: build_metadata.json is not valid JSON: {exc}") from None
    sm_arch = meta.get("sm_arch") if isinstance(meta, dict) else None
    if not sm_arch:
        raise DownloadError(f"{where}: build_metadata.json has no 'sm_arch'; the engine's GPU "
                            "architecture is unknown")
    return str(sm_arch)


def engine_labels(repo: str, revision: str | None) -> list[str]:
    """Return the engine labels of the repo; DownloadError when it has no engines folder."""
    entries = list_folder(repo, ENGINES_ROOT, revision=revision)
    if entries is None:
        top = ", ".join(list_folder(repo, "", revision=revision) or []) or "nothing"
        raise DownloadError(f"TRT_ENGINE_REPO {repo}@{revision or 'main'} has no {ENGINES_ROOT}/ "
                            f"folder, so no pre-built engine (it holds: {top}); set "
                            f"TRT_ENGINE_REPO to a repo with {ENGINES_ROOT}/<label>/")
    return [entry.rstrip("/") for entry in entries if entry.endswith("/")]


def main() -> None:
    """Download the labelled engine, check it, and flatten it into TRT_ENGINE_DIR."""
    repo, label, revision, target = read_settings()
    check_target_dir(target, "TRT_ENGINE_DIR")
    labels = engine_labels(repo, revision)
    if label not in labels:
        raise DownloadError(f"TRT_ENGINE_LABEL {label!r} is not in {repo}@{revision or 'main'}; "
                            f"labels there: {', '.join(labels) or 'none'}")
    with download_lock(target, PREFIX):
        commit = resolve_commit(repo, revision, log_prefix=PREFIX)
        current = {"repo_id": repo, "commit": commit,
                   "allow_patterns": [f"{ENGINES_ROOT}/{label}/*"],
                   "engine_label": label}
        if manifest_matches(target, current) is None:
            sm_arch = fetch_flattened(repo, revision, label, target)
        else:
            sm_arch = check_engine(target, str(target))
            log_success(PREFIX, f"engine {label} ({commit[:12]}) is already in {target}: "
                                "nothing to download")
    log_success(PREFIX, f"engine {label} ({sm_arch}) ready in {target}")


def fetch_flattened(repo: str, revision: str | None, label: str, target: Path) -> str:
    """Download the label's folder of the repo beside `target`, check it (check_engine), then
    move it into `target` with its manifest (recording the label); return its sm_arch. Files
    an earlier engine left in `target` are removed.

    The staging directory, .<name>.download beside `target`, stays after an interrupted
    download, so the next run resumes its partial files; a complete engine that fails the
    check is removed with it (nothing to resume).
    """
    prefix = f"{ENGINES_ROOT}/{label}"
    staging = target.parent / f".{target.name}.download"
    download_snapshot(repo, staging, revision=revision, allow_patterns=[f"{prefix}/*"],
                      log_prefix=PREFIX)
    try:
        sm_arch = check_engine(staging / prefix, f"engine {label} of {repo}")
    except DownloadError:
        shutil.rmtree(staging)
        raise
    manifest = rebase_manifest(read_manifest(staging), prefix)
    target.mkdir(parents=True, exist_ok=True)
    (target / MANIFEST_NAME).unlink(missing_ok=True)
    flatten_into(staging, prefix, target)
    shutil.rmtree(staging)
    prune_unlisted(target, (entry["path"] for entry in manifest["files"]), PREFIX)
    write_manifest(target, {**manifest, "engine_label": label})
    return sm_arch


if __name__ == "__main__":
    sys.exit(run_entry(main, PREFIX))
