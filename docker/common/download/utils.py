"""The documented entry surface of the build-time download helpers, and their one import guard.

The logic lives in pyhelpers (hub.py, manifest.py, model_ref.py, build_log.py); this module
re-exports it under the names the download scripts and their documentation use. Every entry
point imports pyhelpers through this module only, so a missing PYTHONPATH gives one line here.
Run with PYTHONPATH set to the repository root (the Dockerfiles' models stage sets
PYTHONPATH=/build).
"""

try:
    from pyhelpers.build_log import log_skip, log_success, log_warn, run_entry
    from pyhelpers.hub import (
        DownloadError,
        bake_model,
        check_target_dir,
        download_snapshot,
        get_hf_token,
        list_folder,
        resolve_commit,
        verify_files_exist,
    )
    from pyhelpers.manifest import (
        MANIFEST_NAME,
        download_lock,
        manifest_matches,
        prune_unlisted,
        read_manifest,
        rebase_manifest,
        write_manifest,
    )
    from pyhelpers.model_ref import (
        MODEL_FILES,
        TRT_LABEL_HELP,
        is_trt_label,
        matching,
        relative_files,
        target_dir,
    )
except ImportError as exc:
    raise SystemExit(
        f"cannot import pyhelpers ({exc}); run with PYTHONPATH set to the repository root "
        "(the Dockerfiles' models stage sets PYTHONPATH=/build)"
    ) from None

__all__ = [
    "MANIFEST_NAME",
    "MODEL_FILES",
    "TRT_LABEL_HELP",
    "DownloadError",
    "bake_model",
    "check_target_dir",
    "download_lock",
    "download_snapshot",
    "get_hf_token",
    "is_trt_label",
    "list_folder",
    "log_skip",
    "log_success",
    "log_warn",
    "manifest_matches",
    "matching",
    "prune_unlisted",
    "read_manifest",
    "rebase_manifest",
    "relative_files",
    "resolve_commit",
    "run_entry",
    "target_dir",
    "verify_files_exist",
    "write_manifest",
]
