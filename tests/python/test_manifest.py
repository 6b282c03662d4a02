"""pyhelpers.manifest: writing, rebasing and the `verify` command the start-up check runs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import ROOT

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
    file_digests,
    list_files,
    manifest_matches,
    prune_unlisted,
    rebase_manifest,
    verify_manifest,
    write_manifest,
)


def make_dir(tmp_path: Path) -> Path:
    """A directory with two files and a manifest describing them."""
    root = tmp_path / "model dir"
    (root / "sub").mkdir(parents=True)
    (root / "config.json").write_text("{}")
    (root / "sub/w.bin").write_bytes(b"abcdef")
    write_manifest(root, build_manifest(root, list_files(root), {"repo_id": "a/b"}))
    return root


def verify_cli(directory: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """Run `python3 -m pyhelpers.manifest verify` as the start-up check does."""
    return subprocess.run([sys.executable, "-m", "pyhelpers.manifest", "verify", str(directory),
                           *flags], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)


def test_verify_passes_on_an_untouched_dir(tmp_path: Path) -> None:
    root = make_dir(tmp_path)
    assert list_files(root) == ["config.json", "sub/w.bin"]
    proc = verify_cli(root, "--checksums")
    assert proc.returncode == 0 and "2 files match" in proc.stderr


def test_size_change_is_caught_without_checksums(tmp_path: Path) -> None:
    root = make_dir(tmp_path)
    (root / "sub/w.bin").write_bytes(b"abc")
    proc = verify_cli(root)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "'sub/w.bin' has 3 bytes, the manifest says 6" in proc.stderr


def test_same_size_change_needs_checksums(tmp_path: Path) -> None:
    root = make_dir(tmp_path)
    (root / "sub/w.bin").write_bytes(b"ABCDEF")
    assert verify_manifest(root) == 2
    with pytest.raises(ManifestError, match=r"'sub/w.bin' sha256 differs"):
        verify_manifest(root, checksums=True)


def test_missing_and_extra_files_are_named(tmp_path: Path) -> None:
    root = make_dir(tmp_path)
    (root / "stray.txt").write_text("x")
    with pytest.raises(ManifestError, match=r"'stray.txt' is in .* but not in the manifest"):
        verify_manifest(root)
    (root / "stray.txt").unlink()
    (root / "config.json").unlink()
    with pytest.raises(ManifestError, match=r"'config.json' is in the manifest but missing"):
        verify_manifest(root)


def test_absent_or_broken_manifest(tmp_path: Path) -> None:
    proc = verify_cli(tmp_path)
    assert proc.returncode == 1 and "no manifest at" in proc.stderr
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ManifestError, match="not readable JSON"):
        verify_manifest(tmp_path)


def git_blob_id(data: bytes) -> str:
    """The git blob id of some bytes, as `git hash-object` computes it."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def test_build_rejects_bytes_that_differ_from_the_hub(tmp_path: Path) -> None:
    root = make_dir(tmp_path)
    good = HubFile(6, GIT_BLOB_SHA1, git_blob_id(b"abcdef"))
    assert build_manifest(root, ["sub/w.bin"], {}, {"sub/w.bin": good})["files"][0]["hub_check"] \
        == "git-blob-sha1"
    with pytest.raises(IntegrityError, match=r"'sub/w.bin' has 6 bytes on disk but the Hub lists"):
        build_manifest(root, ["sub/w.bin"], {}, {"sub/w.bin": HubFile(7, GIT_BLOB_SHA1, "0" * 40)})
    with pytest.raises(IntegrityError, match=r"does not match the Hub's LFS sha256 0+$"):
        build_manifest(root, ["sub/w.bin"], {}, {"sub/w.bin": HubFile(6, LFS_SHA256, "0" * 64)})
    with pytest.raises(IntegrityError) as err:
        build_manifest(root, ["config.json", "sub/w.bin"], {}, {
            "config.json": HubFile(2, GIT_BLOB_SHA1, git_blob_id(b"{]")),
            "sub/w.bin": HubFile(6, GIT_BLOB_SHA1, git_blob_id(b"ABCDEF"))})
    assert str(err.value) == (f"'config.json' git blob id {git_blob_id(b'{}')} does not match "
                              f"the Hub's {git_blob_id(b'{]')} (and 1 more)")
    assert err.value.paths == ["config.json", "sub/w.bin"]


def test_the_git_blob_id_is_gits_own(tmp_path: Path) -> None:
    data = b"config \x00 bytes\n" * 1000
    (tmp_path / "f").write_bytes(data)
    git = subprocess.run(["git", "hash-object", str(tmp_path / "f")], capture_output=True,
                         text=True, timeout=30, check=True)
    assert file_digests(tmp_path / "f", git_blob=True) == (hashlib.sha256(data).hexdigest(),
                                                           git.stdout.strip())


def test_rebase_drops_the_prefix(tmp_path: Path) -> None:
    root = make_dir(tmp_path)
    manifest = build_manifest(root, ["sub/w.bin"], {"repo_id": "a/b"})
    assert [f["path"] for f in rebase_manifest(manifest, "sub")["files"]] == ["w.bin"]
    with pytest.raises(ManifestError, match="not under 'other'"):
        rebase_manifest(manifest, "other")


@pytest.mark.parametrize("entry", [{"path": "config.json"}, {"size": 2, "sha256": "0" * 64},
                                   {"path": "config.json", "size": "2", "sha256": "0" * 64},
                                   "config.json"])
def test_malformed_entry_is_one_line_not_a_key_error(tmp_path: Path, entry: object) -> None:
    root = make_dir(tmp_path)
    (root / MANIFEST_NAME).write_text(json.dumps({"files": [entry]}))
    proc = verify_cli(root)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "files[0] is not an entry with 'path', 'size' and 'sha256'" in proc.stderr


def test_copy_with_manifest_records_the_reference_not_the_path(tmp_path: Path) -> None:
    src = tmp_path / "host models" / "my-model"
    (src / ".cache").mkdir(parents=True)
    (src / "config.json").write_text("{}")
    (src / ".cache" / "junk").write_text("x")
    (src / MANIFEST_NAME).write_text("stale")
    target = tmp_path / "baked"
    copy_with_manifest(src, target, "local:my-model", "[test]")
    manifest = json.loads((target / MANIFEST_NAME).read_text())
    assert manifest["local_source"] == "local:my-model" and manifest["repo_id"] is None
    assert str(tmp_path) not in json.dumps(manifest)
    assert [f["path"] for f in manifest["files"]] == ["config.json"]
    assert not (target / ".cache").exists()
    assert verify_manifest(target, checksums=True) == 1


def test_download_lock_makes_a_second_download_wait_and_leaves_no_file(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "volume" / "chat"
    order: list[str] = []
    with download_lock(target, "[t]"):
        second = threading.Thread(target=lambda: order.append(take_lock(target)))
        second.start()
        second.join(0.5)
        assert second.is_alive(), "the second download must wait for the first"
        order.append("first done")
    second.join(10)
    assert order == ["first done", "second ran"]
    assert "[t] another download into" in capfd.readouterr().err
    assert list((tmp_path / "volume").iterdir()) == []


def take_lock(target: Path) -> str:
    """Take and release the download lock of `target` (in a thread)."""
    with download_lock(target, "[t]"):
        return "second ran"


def test_manifest_matches_needs_every_field_and_matching_files(tmp_path: Path) -> None:
    root = make_dir(tmp_path)
    assert manifest_matches(root, {"repo_id": "a/b"}) == 2
    assert manifest_matches(root, {"repo_id": "a/c"}) is None
    assert manifest_matches(root, {"repo_id": "a/b", "commit": "x"}) is None
    (root / "config.json").write_text("{ }")
    assert manifest_matches(root, {"repo_id": "a/b"}) is None
    assert manifest_matches(tmp_path / "nowhere", {}) is None


def test_prune_unlisted_keeps_the_manifest_and_cache(tmp_path: Path) -> None:
    root = make_dir(tmp_path)
    (root / ".cache").mkdir()
    (root / ".cache/x").write_text("x")
    assert prune_unlisted(root, ["config.json"], "[t]") == ["sub/w.bin"]
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == \
        [".cache/x", MANIFEST_NAME, "config.json"]
