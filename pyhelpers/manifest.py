"""The download manifest: what a build fetched, and a check that a directory still matches it.

Usage: python3 -m pyhelpers.manifest verify <dir> [--checksums]
  Compare <dir> with <dir>/.download-manifest.json: file list and sizes by default (fast enough
  for every container start), sha256 as well with --checksums. Status 1 names the first
  differing file.

A download into a directory that already holds its manifest (a volume filled before) uses
manifest_matches() to do nothing, download_lock() to take turns with other downloads into the
same shared volume, and prune_unlisted() to drop a previous revision's files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyhelpers.build_log import (
    BuildError,
    debug_enabled,
    log_err,
    log_info,
    log_success,
    log_warn,
)

MANIFEST_NAME = ".download-manifest.json"
FORMAT_VERSION = 1
_SKIP_DIRS = (".cache",)
# The hash the Hub gives for a file: the sha256 of an LFS file's bytes, the git blob id
# (sha1 of "blob <size>\0" and the bytes) of a regular one.
LFS_SHA256 = "lfs-sha256"
GIT_BLOB_SHA1 = "git-blob-sha1"


class ManifestError(BuildError):
    """A manifest is missing or unreadable, or a directory does not match it."""


class IntegrityError(ManifestError):
    """Downloaded files differ from what the Hub announced; `paths` names every one."""

    def __init__(self, message: str, paths: list[str]) -> None:
        """Keep the message and the relative paths of the files that differ."""
        super().__init__(message)
        self.paths = paths


@dataclass(frozen=True)
class HubFile:
    """What the Hub announces for a file: its size and hash (kind: LFS_SHA256, GIT_BLOB_SHA1)."""

    size: int
    kind: str
    digest: str


def file_digests(path: Path, git_blob: bool = False) -> tuple[str, str | None]:
    """Return a file's hex sha256 and, when asked, its git blob id: both from one read."""
    import hashlib  # here, as shutil, concurrent.futures and argparse below: every container
    # start reads manifests (verify_manifest) and needs none of them, a tenth of that start

    sha256 = hashlib.sha256()
    blob = None
    if git_blob:
        blob = hashlib.sha1(f"blob {Path(path).stat().st_size}\0".encode(),
                            usedforsecurity=False)
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha256.update(chunk)
            if blob is not None:
                blob.update(chunk)
    return sha256.hexdigest(), blob.hexdigest() if blob is not None else None


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    return file_digests(path)[0]


def list_files(directory: Path) -> list[str]:
    """Return the files under `directory` (POSIX relative paths), without the manifest or .cache."""
    root = Path(directory)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if rel != MANIFEST_NAME:
                found.append(rel)
    return found


def build_manifest(
    directory: Path,
    paths: list[str],
    source: dict[str, Any],
    expected: dict[str, HubFile] | None = None,
) -> dict[str, Any]:
    """Describe `paths` under `directory` (size, sha256 from disk) with `source` fields.

    Every file `expected` names must have the size and hash the Hub announced (the sha256 of an
    LFS file, the git blob id of a regular one); IntegrityError names all that do not.
    """
    expected = expected or {}
    rels = sorted(paths)
    for rel in rels:
        if not (Path(directory) / rel).is_file():
            raise ManifestError(f"{rel!r} is missing from {str(directory)!r} after the download")
    from concurrent.futures import ThreadPoolExecutor

    # hashlib releases the GIL on large buffers: hash the files on every core at once.
    def digests_of(rel: str) -> tuple[str, str | None]:
        hub = expected.get(rel)
        return file_digests(Path(directory) / rel, hub is not None and hub.kind == GIT_BLOB_SHA1)

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        digests = dict(zip(rels, pool.map(digests_of, rels), strict=True))
    files, wrong = [], []
    for rel in rels:
        size = (Path(directory) / rel).stat().st_size
        sha256, blob = digests[rel]
        hub = expected.get(rel)
        problem = _hub_mismatch(rel, size, sha256, blob, hub) if hub is not None else None
        if problem:
            wrong.append(problem)
        files.append({"path": rel, "size": size, "sha256": sha256,
                      "hub_check": hub.kind if hub is not None else None})
    if wrong:
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        raise IntegrityError(f"{wrong[0][1]}{more}", [rel for rel, _ in wrong])
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"format": FORMAT_VERSION, **source, "created_at": created, "files": files}


def _hub_mismatch(rel: str, size: int, sha256: str, blob: str | None,
                  hub: HubFile) -> tuple[str, str] | None:
    """Return (rel, why) when a file on disk is not the one the Hub announced, else None."""
    if size != hub.size:
        return rel, f"{rel!r} has {size} bytes on disk but the Hub lists {hub.size}"
    if hub.kind == LFS_SHA256 and sha256 != hub.digest:
        return rel, f"{rel!r} sha256 {sha256} does not match the Hub's LFS sha256 {hub.digest}"
    if hub.kind == GIT_BLOB_SHA1 and blob != hub.digest:
        return rel, f"{rel!r} git blob id {blob} does not match the Hub's {hub.digest}"
    return None


def rebase_manifest(manifest: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Return a copy of `manifest` whose file paths drop `prefix` (for flattened layouts)."""
    head = prefix.rstrip("/") + "/"
    files = []
    for entry in manifest["files"]:
        if not entry["path"].startswith(head):
            raise ManifestError(f"{entry['path']!r} is not under {prefix!r}")
        files.append({**entry, "path": entry["path"][len(head):]})
    return {**manifest, "files": files}


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    """Write `manifest` to `directory`/.download-manifest.json atomically; return its path."""
    path = Path(directory) / MANIFEST_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_manifest(directory: Path) -> dict[str, Any]:
    """Load the manifest of `directory`; ManifestError when absent or not valid JSON."""
    path = Path(directory) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"no manifest at {str(path)!r}") from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"manifest {str(path)!r} is not readable JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise ManifestError(f"manifest {str(path)!r} has no 'files' list")
    for index, entry in enumerate(data["files"]):
        if not (isinstance(entry, dict) and isinstance(entry.get("path"), str)
                and isinstance(entry.get("size"), int) and isinstance(entry.get("sha256"), str)):
            raise ManifestError(f"manifest {str(path)!r}: files[{index}] is not an entry with "
                                f"'path', 'size' and 'sha256': {str(entry)[:120]}")
    return data


def copy_with_manifest(src: Path, target: Path, reference: str, log_prefix: str) -> Path:
    """Copy a local model directory into `target` and write its manifest; return `target`.

    `reference` is what the manifest records as the source (never a build host's path).
    """
    import shutil

    size = sum((Path(src) / rel).stat().st_size for rel in list_files(Path(src)))
    log_info(log_prefix, f"copying the local model {reference} ({size / 2**20:.1f} MiB) → {target}")
    shutil.copytree(src, target, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(*_SKIP_DIRS, MANIFEST_NAME))
    source = {"repo_id": None, "local_source": reference, "revision": None, "commit": None}
    write_manifest(target, build_manifest(target, list_files(target), source))
    return target


def verify_manifest(directory: Path, checksums: bool = False) -> int:
    """Check `directory` against its manifest; return the file count, raise at a difference."""
    manifest = read_manifest(directory)
    listed = set()
    for entry in manifest["files"]:
        rel = entry["path"]
        listed.add(rel)
        path = Path(directory) / rel
        if not path.is_file():
            raise ManifestError(f"{rel!r} is in the manifest but missing from {str(directory)!r}")
        size = path.stat().st_size
        if size != entry["size"]:
            raise ManifestError(f"{rel!r} has {size} bytes, the manifest says {entry['size']}")
        if checksums and sha256_file(path) != entry["sha256"]:
            raise ManifestError(f"{rel!r} sha256 differs from the manifest")
    extra = [rel for rel in list_files(directory) if rel not in listed]
    if extra:
        raise ManifestError(f"{extra[0]!r} is in {str(directory)!r} but not in the manifest")
    return len(listed)


def manifest_matches(directory: Path, fields: dict[str, Any]) -> int | None:
    """Return the file count when the manifest of `directory` holds `fields` and its files
    match it (verify_manifest, sizes); None when there is no manifest or anything differs."""
    try:
        manifest = read_manifest(directory)
        if any(manifest.get(key) != value for key, value in fields.items()):
            return None
        return verify_manifest(directory)
    except ManifestError:
        return None


@contextlib.contextmanager
def download_lock(target: Path, log_prefix: str) -> Iterator[None]:
    """Hold an exclusive lock on downloads into `target` while the block runs.

    The lock is a file, `.<name>.lock` beside `target` (inside it would be an unlisted file),
    so downloads started at once into one shared volume (the init containers of several
    replicas) run one after the other, and the later ones find the manifest current. The holder
    removes the file when done; a waiter that then gets a removed file's lock tries again.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    path = target.parent / f".{target.name}.lock"
    told = False
    while True:
        handle = path.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not told:
                log_info(log_prefix, f"another download into {target} is running: waiting for it")
                told = True
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            current = os.fstat(handle.fileno()).st_ino == path.stat().st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        handle.close()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        handle.close()


def prune_unlisted(directory: Path, keep: Iterable[str], log_prefix: str) -> list[str]:
    """Delete the files under `directory` that `keep` does not list (an earlier revision's
    left in a volume); return their relative paths. The manifest and .cache stay."""
    wanted = set(keep)
    removed = [rel for rel in list_files(directory) if rel not in wanted]
    for rel in removed:
        (Path(directory) / rel).unlink()
    if removed:
        log_warn(log_prefix, f"removed {len(removed)} file(s) the new download does not have "
                             f"from {directory}: {', '.join(removed[:5])}")
    return removed


def main(argv: list[str] | None = None) -> int:
    """CLI: verify a directory against its manifest; status 1 with one line on a difference."""
    import argparse

    parser = argparse.ArgumentParser(prog="python3 -m pyhelpers.manifest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="compare a directory with its manifest")
    verify.add_argument("directory", type=Path)
    verify.add_argument("--checksums", action="store_true", help="also compare sha256")
    args = parser.parse_args(argv)
    try:
        count = verify_manifest(args.directory, checksums=args.checksums)
    except ManifestError as exc:
        if debug_enabled():
            raise
        log_err("[manifest]", str(exc))
        return 1
    what = "sizes and sha256" if args.checksums else "sizes"
    log_success("[manifest]", f"{args.directory}: {count} files match the manifest ({what})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
