"""The documented entry surface of the build-time download helpers.

The logic lives in pyhelpers (hub.py, build_log.py); this module re-exports it under the names
the download scripts and their documentation use. Run with PYTHONPATH set to the repository root
(the images set PYTHONPATH=/app).
"""

try:
    from pyhelpers.build_log import log_skip, log_success
    from pyhelpers.hub import (
        DownloadError,
        download_snapshot,
        get_hf_token,
        run_entry,
        verify_files_exist,
    )
except ImportError as exc:
    raise SystemExit(
        f"cannot import pyhelpers ({exc}); run with PYTHONPATH set to the repository root "
        "(the images set PYTHONPATH=/app)"
    ) from None

__all__ = [
    "DownloadError",
    "download_snapshot",
    "get_hf_token",
    "log_skip",
    "log_success",
    "run_entry",
    "verify_files_exist",
]
