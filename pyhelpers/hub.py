"""Build-time downloads from the Hugging Face Hub (or a mirror named by HF_ENDPOINT).

download_snapshot() wraps huggingface_hub.snapshot_download(local_dir=...): it resolves the
revision to a commit, checks free space, retries transient failures, turns Hub errors into one
line each (DownloadError), checks every file against the Hub's own hash (LFS sha256, git blob
id) and writes target_dir/.download-manifest.json. Run again into a directory whose manifest
already records that commit and whose files match it, it downloads nothing (a volume filled
before); an interrupted run resumes its partial files. Works with
huggingface_hub 0.x (requests) and 1.x/2.x (httpx, httpx2): the network error types come from
whichever HTTP client is installed.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from huggingface_hub import HfApi, constants, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile, RepoFolder
from huggingface_hub.utils import disable_progress_bars, filter_repo_objects

from pyhelpers.build_log import BuildError, log_info, log_success, log_warn
from pyhelpers.logs import json_lines
from pyhelpers.manifest import (
    GIT_BLOB_SHA1,
    LFS_SHA256,
    MANIFEST_NAME,
    HubFile,
    IntegrityError,
    ManifestError,
    build_manifest,
    copy_with_manifest,
    download_lock,
    manifest_matches,
    prune_unlisted,
    write_manifest,
)
from pyhelpers.model_ref import local_model_dir, matching, relative_files

SECRET_FILE_DEFAULT = "/run/secrets/hf_token"  # noqa: S105 (a path, not a secret)
DEFAULT_RETRIES = 3
BACKOFF_CAP_S = 30.0
_AUTH_ADVICE = "pass HF_TOKEN as a build secret (docker build --secret id=hf_token,env=HF_TOKEN)"

T = TypeVar("T")


def _transport_error_types() -> tuple[type[BaseException], ...]:
    """Return the network error types of the HTTP clients installed (httpx2, httpx, requests)."""
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, name in (("httpx2", "TransportError"), ("httpx", "TransportError"),
                         ("requests", "ConnectionError"), ("requests", "Timeout")):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue  # that client is not installed: huggingface_hub does not use it
    return tuple(found)


TRANSPORT_ERRORS = _transport_error_types()


class DownloadError(BuildError):
    """An expected download failure; its message is the one line a build log shows."""


def get_hf_token() -> str | None:
    """Return the Hub token: HF_TOKEN, the secret file (HF_TOKEN_FILE), then huggingface_hub's."""
    token = os.environ.get("HF_TOKEN", "").strip()
    if token:
        return token
    secret = Path(os.environ.get("HF_TOKEN_FILE") or SECRET_FILE_DEFAULT)
    try:
        token = secret.read_text(encoding="utf-8").strip()
    except OSError:
        token = ""
    if token:
        return token
    from huggingface_hub import get_token

    return (get_token() or "").strip() or None


def hub_endpoint() -> str:
    """Return the Hub URL: HF_ENDPOINT read now (a mirror), else huggingface_hub's default."""
    return (os.environ.get("HF_ENDPOINT", "").strip() or constants.ENDPOINT).rstrip("/")


def download_retries() -> int:
    """Return HF_DOWNLOAD_RETRIES (default 3); ValueError naming the variable when invalid."""
    raw = os.environ.get("HF_DOWNLOAD_RETRIES", "").strip()
    if not raw:
        return DEFAULT_RETRIES
    if not raw.isdigit() or int(raw) > 20:
        raise ValueError(f"HF_DOWNLOAD_RETRIES {raw!r} is not valid; use a whole number 0-20")
    return int(raw)


def _is_transient(exc: BaseException) -> bool:
    """Return True for failures worth retrying: network errors, 5xx and 429 answers."""
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        return status == 429 or status >= 500
    # snapshot_download reports an unreachable Hub as LocalEntryNotFoundError.
    return isinstance(exc, (LocalEntryNotFoundError, *TRANSPORT_ERRORS))


def _sleep(seconds: float) -> None:
    """Wait between attempts (a seam for tests)."""
    time.sleep(seconds)


def _with_retries(what: str, func: Callable[[], T], prefix: str) -> T:
    """Call `func`, retrying transient failures HF_DOWNLOAD_RETRIES times with backoff."""
    retries = download_retries()
    for attempt in range(retries + 1):
        try:
            return func()
        except Exception as exc:
            if not _is_transient(exc):
                raise
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if attempt == retries:
                raise DownloadError(
                    f"{what} failed after {retries + 1} attempts at {hub_endpoint()}: {reason}"
                ) from exc
            delay = min(BACKOFF_CAP_S, 2.0**attempt)
            log_warn(prefix, f"{what}: {reason}; retry {attempt + 1}/{retries} in {delay:.0f}s")
            _sleep(delay)
    raise AssertionError("unreachable")


def _hub_error(
    exc: Exception, api: HfApi, repo_id: str, revision: str, token: str | None
) -> DownloadError | None:
    """Return a DownloadError with one clear line for a known Hub error, else None."""
    where = hub_endpoint()
    if isinstance(exc, HFValidationError):
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return DownloadError(f"{repo_id!r}@{revision!r} is not a valid repo id or revision for "
                             f"the Hub: {first}")
    if isinstance(exc, GatedRepoError):
        if token:
            return DownloadError(f"{repo_id} is gated and the token has no access: accept its "
                                 f"terms on the Hub with the token's account")
        return DownloadError(f"{repo_id} is gated: accept its terms on the Hub and {_AUTH_ADVICE}")
    if isinstance(exc, RevisionNotFoundError):
        return DownloadError(f"revision {revision!r} not found in {repo_id} at {where}")
    if isinstance(exc, RepositoryNotFoundError):
        if revision != constants.DEFAULT_REVISION and _repo_exists(api, repo_id, token):
            return DownloadError(f"revision {revision!r} not found in {repo_id} at {where}")
        if token:
            return DownloadError(f"repository {repo_id} not found at {where}, "
                                 f"or the token cannot access it")
        return DownloadError(f"repository {repo_id} not found at {where} "
                             f"(a private or gated repo needs a token: {_AUTH_ADVICE})")
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        if exc.response.status_code == 401:
            return DownloadError(f"the Hub token was rejected by {where} (401): "
                                 f"check HF_TOKEN or the hf_token secret")
        return DownloadError(f"{repo_id}: {str(exc).splitlines()[0]}")
    return None


def _raise_hub_error(
    exc: Exception, api: HfApi, repo_id: str, revision: str, token: str | None
) -> NoReturn:
    """Raise the one-line DownloadError for a known Hub error; re-raise anything else as is."""
    err = _hub_error(exc, api, repo_id, revision, token)
    if err is None:
        raise exc
    raise err from exc


def _repo_exists(api: HfApi, repo_id: str, token: str | None,
                 revision: str = constants.DEFAULT_REVISION) -> bool:
    """Return True when `repo_id` answers at `revision` (default: the default branch)."""
    try:
        api.repo_info(repo_id, revision=revision, token=token or False)
    except (HfHubHTTPError, HFValidationError, *TRANSPORT_ERRORS):
        return False
    return True


def check_target_dir(target: str | Path, name: str) -> None:
    """Raise DownloadError unless `target` is, or can be made, a writable directory.

    Nothing is created; `name` is the variable that set it (TOOL_MODEL_PATH …), for the message.
    """
    path = Path(target).absolute()
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        what = "is" if probe == path else f"would be under {str(probe)!r}, which is"
        raise DownloadError(f"{name} {str(target)!r} {what} not a directory; set {name} to a "
                            "directory (it is made when missing)")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise DownloadError(f"{name} {str(target)!r} cannot be written ({str(probe)!r}: "
                            f"{exc.strerror or exc}); set {name} to a writable directory") from None


def _free_bytes(path: Path) -> int:
    """Return the free bytes on the filesystem holding `path` (its nearest existing parent)."""
    probe = Path(path).absolute()
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def _check_space(target_dir: Path, files: list[RepoFile], repo_id: str) -> None:
    """Raise DownloadError when the files still to fetch cannot fit at `target_dir`."""
    needed = 0
    for item in files:
        local = target_dir / item.path
        if not (local.is_file() and local.stat().st_size == item.size):
            needed += item.size or 0
    free = _free_bytes(target_dir)
    if needed > free:
        raise DownloadError(f"{repo_id} needs {needed / 2**30:.2f} GiB, "
                            f"{free / 2**30:.2f} GiB free at {target_dir}")


def list_folder(repo_id: str, path: str, revision: str | None = None,
                token: str | None = None) -> list[str] | None:
    """Return the names directly under `path` in the repo, folders ending in '/' (sorted).

    None when the repo exists at `revision` but has no such folder ("" is the top level).
    """
    token = token if token is not None else get_hf_token()
    api = HfApi(endpoint=hub_endpoint())
    rev = revision or constants.DEFAULT_REVISION

    def _list() -> list[Any]:
        return list(api.list_repo_tree(repo_id, path_in_repo=path or None, revision=rev,
                                       token=token or False))

    try:
        entries = _with_retries(f"listing {repo_id}/{path}", _list, "[hub]")
    except Exception as exc:
        # The Hub answers 404 for a missing folder; a mirror may answer "repository not found".
        status = exc.response.status_code if isinstance(exc, HfHubHTTPError) \
            and exc.response is not None else 0
        if (status == 404 or isinstance(exc, RepositoryNotFoundError)) \
                and _repo_exists(api, repo_id, token, rev):
            return None
        _raise_hub_error(exc, api, repo_id, rev, token)
    return sorted(e.path.rsplit("/", 1)[-1] + ("/" if isinstance(e, RepoFolder) else "")
                  for e in entries)


def resolve_commit(repo_id: str, revision: str | None = None, token: str | None = None,
                   log_prefix: str = "[build]") -> str:
    """Return the commit sha that `revision` (None: main) of `repo_id` names now."""
    token = token if token is not None else get_hf_token()
    rev = revision or constants.DEFAULT_REVISION
    api = HfApi(endpoint=hub_endpoint())
    try:
        info = _with_retries(f"resolving {repo_id}@{rev}", lambda: api.repo_info(
            repo_id, revision=rev, token=token or False), log_prefix)
    except DownloadError:
        raise
    except Exception as exc:
        _raise_hub_error(exc, api, repo_id, rev, token)
    return str(info.sha)


def download_snapshot(
    repo_id: str,
    target_dir: str | Path,
    token: str | None = None,
    allow_patterns: list[str] | None = None,
    ignore_patterns: list[str] | None = None,
    revision: str | None = None,
    log_prefix: str = "[build]",
    extra: dict[str, Any] | None = None,
) -> Path:
    """Download the selected files of `repo_id` at `revision` into `target_dir`; return it.

    `token` None means get_hf_token(); `extra` adds fields to the manifest. Nothing is fetched
    when the directory's manifest records the same commit and patterns and its files match;
    otherwise every file fetched must have the size and hash the Hub lists for it (_fetch).
    """
    target = Path(target_dir)
    token = token if token is not None else get_hf_token()
    rev = revision or constants.DEFAULT_REVISION
    with download_lock(target, log_prefix):
        commit = resolve_commit(repo_id, rev, token, log_prefix)
        selection = {"repo_id": repo_id, "commit": commit, "allow_patterns": allow_patterns,
                     "ignore_patterns": ignore_patterns}
        count = manifest_matches(target, selection)
        if count is not None:
            log_success(log_prefix, f"{repo_id}@{rev} ({commit[:12]}) is already in {target} "
                                    f"({count} files match its manifest): nothing to download")
            return target
        files = _list_selected(repo_id, commit, rev, token, allow_patterns, ignore_patterns,
                               log_prefix)
        source = {**selection, "revision": rev, "endpoint": hub_endpoint(), **(extra or {})}
        write_manifest(target, _fetch(target, files, source, token, log_prefix))
    log_success(log_prefix, f"{repo_id}@{commit[:12]}: {len(files)} files in {target}, each "
                            "matching the Hub's hash")
    return target


def _list_selected(repo_id: str, commit: str, rev: str, token: str | None,
                   allow_patterns: list[str] | None, ignore_patterns: list[str] | None,
                   log_prefix: str) -> list[RepoFile]:
    """Return the files of `repo_id` at `commit` that the patterns select (at least one)."""
    api = HfApi(endpoint=hub_endpoint())
    try:
        tree = _with_retries(f"listing {repo_id}@{commit[:12]}", lambda: list(
            api.list_repo_tree(repo_id, revision=commit, recursive=True,
                               token=token or False)), log_prefix)
    except DownloadError:
        raise
    except Exception as exc:
        _raise_hub_error(exc, api, repo_id, rev, token)
    files = list(filter_repo_objects(
        [f for f in tree if isinstance(f, RepoFile)], allow_patterns=allow_patterns,
        ignore_patterns=ignore_patterns, key=lambda f: f.path))
    if not files:
        raise DownloadError(f"no file in {repo_id}@{rev} matches allow_patterns="
                            f"{allow_patterns} ignore_patterns={ignore_patterns}")
    return files


def _fetch(target: Path, files: list[RepoFile], source: dict[str, Any], token: str | None,
           log_prefix: str) -> dict[str, Any]:
    """Download `files` into `target`; return their manifest, with the `source` fields.

    `source` names the repo_id, commit, revision and patterns. Every file must have the size
    and hash the Hub lists for it; files that differ (left by an earlier run, or damaged on the
    way) are downloaded once more, then it is an error. The old manifest goes first, so an
    interrupted download never looks complete at start-up; files `files` does not list go last.
    """
    where = f"{source['repo_id']}@{source['commit'][:12]}"
    _check_space(target, files, source["repo_id"])
    total = sum(f.size or 0 for f in files)
    log_info(log_prefix, f"downloading {source['repo_id']}@{source['revision']} "
                         f"({source['commit'][:12]}): {len(files)} files, "
                         f"{total / 2**20:.1f} MiB → {target}")
    target.mkdir(parents=True, exist_ok=True)
    (target / MANIFEST_NAME).unlink(missing_ok=True)
    if json_lines():  # a progress bar is no JSON object: with LOG_FORMAT=json, none
        disable_progress_bars()
    expected = {f.path: _hub_file(f) for f in files}
    for attempt in (1, 2):
        _snapshot(target, source, token, log_prefix)
        try:
            manifest = build_manifest(target, list(expected), source, expected)
            break
        except IntegrityError as exc:
            if attempt == 2:
                raise DownloadError(f"{where}: {exc} (after downloading it again)") from exc
            # A file left by an earlier run, or damaged on the way: fetch it once more.
            log_warn(log_prefix, f"{where}: {exc}; downloading {len(exc.paths)} file(s) again")
            for rel in exc.paths:
                (target / rel).unlink(missing_ok=True)
        except ManifestError as exc:
            raise DownloadError(f"{where}: {exc}") from exc
    shutil.rmtree(target / ".cache" / "huggingface", ignore_errors=True)
    cache_dir = target / ".cache"
    if cache_dir.is_dir() and not any(cache_dir.iterdir()):
        cache_dir.rmdir()
    prune_unlisted(target, expected, log_prefix)
    return manifest


def _snapshot(target: Path, source: dict[str, Any], token: str | None, log_prefix: str) -> None:
    """One snapshot_download (with retries) of what `source` selects into `target`."""
    repo_id, commit = source["repo_id"], source["commit"]
    api = HfApi(endpoint=hub_endpoint())
    try:
        _with_retries(f"downloading {repo_id}@{commit[:12]}", lambda: snapshot_download(
            repo_id, revision=commit, local_dir=target, token=token or False,
            endpoint=api.endpoint, allow_patterns=source["allow_patterns"],
            ignore_patterns=source["ignore_patterns"]), log_prefix)
    except DownloadError:
        raise
    except Exception as exc:
        _raise_hub_error(exc, api, repo_id, source["revision"], token)


def _hub_file(entry: RepoFile) -> HubFile:
    """What the Hub says a file is: its size and hash (LFS sha256, else the git blob id)."""
    if entry.lfs is not None:
        return HubFile(entry.size, LFS_SHA256, entry.lfs.sha256)
    return HubFile(entry.size, GIT_BLOB_SHA1, entry.blob_id)


def bake_model(reference: str, target_dir: str | Path, kind: str, revision: str | None,
               log_prefix: str) -> Path:
    """Put the model a reference names into `target_dir`, with its manifest; return the dir.

    A local model directory (pyhelpers.model_ref.local_model_dir: an absolute path, or the
    build context's copy named local:<name>) is copied; a Hub repo id is downloaded at
    `revision` (None: main). `kind` is "chat" or "tool".
    """
    local = local_model_dir(reference, kind)
    if local is not None:
        return copy_with_manifest(local, Path(target_dir), reference, log_prefix)
    return download_snapshot(reference, target_dir, revision=revision, log_prefix=log_prefix)


def verify_files_exist(
    target_dir: str | Path,
    required_patterns: list[str] | None = None,
    file_extension: str | None = None,
) -> list[str]:
    """Return the files under `target_dir` matching every pattern (and the extension).

    Each pattern in `required_patterns` (fnmatch on relative paths; "a|b" accepts either) must
    match at least one file; a missing directory or an unmatched pattern raises DownloadError.
    """
    root = Path(target_dir)
    if not root.is_dir():
        raise DownloadError(f"directory {str(root)!r} does not exist (required: "
                            f"{required_patterns or []}, extension: {file_extension or 'any'})")
    files = relative_files(root)
    if file_extension:
        files = [f for f in files if f.endswith(file_extension)]
        if not files:
            raise DownloadError(f"no '*{file_extension}' file in {str(root)!r}")
    matched: list[str] = []
    for pattern in required_patterns or []:
        hits = matching(files, pattern)
        if not hits:
            raise DownloadError(f"no file in {str(root)!r} matches {pattern!r} "
                                f"(required: {required_patterns})")
        matched.extend(h for h in hits if h not in matched)
    return matched if required_patterns else files

