"""pyhelpers.hub against a real Olah mirror with the real huggingface_hub client."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from conftest import HubMirror, flaky_proxy, hub_mirror, pid_gone

from pyhelpers import hub as hubmod
from pyhelpers.hub import DownloadError, download_snapshot, get_hf_token, verify_files_exist
from pyhelpers.manifest import MANIFEST_NAME, verify_manifest

Fault = flaky_proxy.Fault
FlakyProxy = flaky_proxy.FlakyProxy
WEIGHTS = os.urandom(6000)  # above the fixture's LFS threshold: served as an LFS object


def model_files(version: str = "1") -> dict[str, bytes | str]:
    """A small model repo: config, tokenizer, LFS weights, a README and a nested folder."""
    return {
        "config.json": json.dumps({"version": version}),
        "tokenizer.json": "{}",
        "model.safetensors": WEIGHTS,
        "README.md": "# readme",
        "extra/notes.txt": "notes",
    }


def manifest_of(directory: Path) -> dict:
    """The manifest download_snapshot wrote."""
    return json.loads((directory / MANIFEST_NAME).read_text())


def test_full_snapshot_writes_exact_manifest(hub: HubMirror, tmp_path: Path) -> None:
    sha = hub.publish("acme/full", model_files())
    out = download_snapshot("acme/full", tmp_path / "out")
    assert out == tmp_path / "out"
    assert (out / "model.safetensors").read_bytes() == WEIGHTS
    assert (out / "extra/notes.txt").read_text() == "notes"
    assert not (out / ".cache").exists(), "huggingface_hub bookkeeping must be removed"
    manifest = manifest_of(out)
    assert manifest["commit"] == sha == hub.git("acme/full", "rev-parse", "main")
    assert manifest["repo_id"] == "acme/full" and manifest["revision"] == "main"
    files = {f["path"]: f for f in manifest["files"]}
    assert set(files) == set(model_files())
    weights = files["model.safetensors"]
    assert weights["size"] == len(WEIGHTS)
    assert weights["sha256"] == hashlib.sha256(WEIGHTS).hexdigest()
    assert weights["hub_check"] == "lfs-sha256"
    assert {f["hub_check"] for f in files.values() if f is not weights} == {"git-blob-sha1"}
    assert verify_manifest(out, checksums=True) == len(model_files())


def test_allow_and_ignore_patterns_select_files(hub: HubMirror, tmp_path: Path) -> None:
    hub.publish("acme/patterns", model_files())
    out = download_snapshot("acme/patterns", tmp_path / "a", allow_patterns=["*.json"],
                            ignore_patterns=["tokenizer*"])
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "config.json"]
    assert [f["path"] for f in manifest_of(out)["files"]] == ["config.json"]
    out = download_snapshot("acme/patterns", tmp_path / "b", ignore_patterns=["extra/*", "*.md"])
    assert not (out / "extra").exists() and not (out / "README.md").exists()
    assert (out / "model.safetensors").is_file()


@pytest.mark.parametrize("kind", ["branch", "tag", "commit"])
def test_revision_resolves_to_the_git_commit(hub: HubMirror, tmp_path: Path, kind: str) -> None:
    repo = f"acme/rev-{kind}"
    old = hub.publish(repo, model_files("1"))
    hub.git(repo, "tag", "v1", old)
    hub.git(repo, "branch", "stable", old)
    new = hub.publish(repo, model_files("2"))
    assert new != old
    revision = {"branch": "stable", "tag": "v1", "commit": old}[kind]
    out = download_snapshot(repo, tmp_path / "out", revision=revision)
    assert json.loads((out / "config.json").read_text()) == {"version": "1"}
    manifest = manifest_of(out)
    assert manifest["commit"] == hub.git(repo, "rev-parse", f"{revision}^{{commit}}") == old
    assert manifest["revision"] == revision


def test_missing_repo_is_one_clear_line(hub: HubMirror, tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as err:
        download_snapshot("acme/does-not-exist", tmp_path / "out")
    message = str(err.value)
    assert "repository acme/does-not-exist not found" in message and hub.url in message
    assert "HF_TOKEN" in message and "\n" not in message
    assert not (tmp_path / "out").exists()


def test_missing_revision_is_named(hub: HubMirror, tmp_path: Path) -> None:
    hub.publish("acme/norev", model_files())
    with pytest.raises(DownloadError, match=r"revision 'no-such-branch' not found in acme/norev"):
        download_snapshot("acme/norev", tmp_path / "out", revision="no-such-branch")
    assert not (tmp_path / "out").exists()


def test_patterns_matching_nothing_fail(hub: HubMirror, tmp_path: Path) -> None:
    hub.publish("acme/nomatch", model_files())
    with pytest.raises(DownloadError, match=r"no file in acme/nomatch@main matches .*\*\.gguf"):
        download_snapshot("acme/nomatch", tmp_path / "out", allow_patterns=["*.gguf"])


def test_not_enough_disk_stops_before_fetching(
    hub: HubMirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.publish("acme/big", model_files())
    monkeypatch.setattr(hubmod, "_free_bytes", lambda _path: 1000)
    with pytest.raises(DownloadError, match=r"acme/big needs 0\.00 GiB, 0\.00 GiB free at "):
        download_snapshot("acme/big", tmp_path / "out")
    assert not (tmp_path / "out").exists(), "nothing may be fetched when it cannot fit"


def test_lfs_sha256_mismatch_is_caught(hub: HubMirror, tmp_path: Path) -> None:
    hub.publish("acme/corrupt", {"config.json": "{}", "model.safetensors": WEIGHTS})
    oid = hashlib.sha256(WEIGHTS).hexdigest()
    repo = hub_mirror.repo_path(hub.mirrors, "acme/corrupt")
    (repo / ".git/lfs/objects" / oid[:2] / oid[2:4] / oid).write_bytes(bytes(len(WEIGHTS)))
    with pytest.raises(DownloadError, match=r"'model.safetensors' sha256 .* LFS sha256 " + oid):
        download_snapshot("acme/corrupt", tmp_path / "out")
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()


def test_server_down_first_then_up_is_retried(
    hub: HubMirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    hub.publish("acme/retry", model_files())
    late = hub_mirror.MirrorServer(hub.mirrors)  # not started: the first attempt is refused
    monkeypatch.setenv("HF_ENDPOINT", late.url)
    waits: list[float] = []

    def start_during_backoff(seconds: float) -> None:
        waits.append(seconds)
        if not late.answers():
            late.start()

    monkeypatch.setattr(hubmod, "_sleep", start_during_backoff)
    try:
        out = download_snapshot("acme/retry", tmp_path / "out")
        pid = late.pid
    finally:
        late.stop()
    assert pid is not None and pid_gone(pid)
    assert waits == [1.0], "exactly one retry, after the first backoff"
    assert manifest_of(out)["commit"] == hub.git("acme/retry", "rev-parse", "main")
    assert "retry 1/3" in capfd.readouterr().err


def test_retries_exhausted_gives_one_line(
    hub: HubMirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{hub_mirror.free_port()}")
    monkeypatch.setenv("HF_DOWNLOAD_RETRIES", "2")
    waits: list[float] = []
    monkeypatch.setattr(hubmod, "_sleep", waits.append)
    with pytest.raises(DownloadError, match=r"failed after 3 attempts at http://127\.0\.0\.1"):
        download_snapshot("acme/whatever", tmp_path / "out")
    assert waits == [1.0, 2.0]


@pytest.mark.parametrize("value", ["-1", "three", "99"])
def test_bad_retry_count_names_the_variable(
    hub: HubMirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("HF_DOWNLOAD_RETRIES", value)
    with pytest.raises(ValueError, match=rf"HF_DOWNLOAD_RETRIES '{value}' is not valid"):
        download_snapshot("acme/full", tmp_path / "out")


def test_token_order_env_then_secret_file_then_hub_login(
    hub: HubMirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants as hf_constants

    secret = tmp_path / "hf_token"
    login = tmp_path / "login-token"
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(login))
    monkeypatch.setenv("HF_TOKEN_FILE", str(secret))
    assert get_hf_token() is None
    login.write_text("hf_login\n")
    assert get_hf_token() == "hf_login"
    secret.write_text("  hf_from_secret \n")
    assert get_hf_token() == "hf_from_secret"
    monkeypatch.setenv("HF_TOKEN", "   ")
    assert get_hf_token() == "hf_from_secret", "a blank HF_TOKEN means none"
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    assert get_hf_token() == "hf_from_env"


def test_token_never_in_output_or_manifest(
    hub: HubMirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    token = "hf_SeCrEtTokenValue123"
    (tmp_path / "secret").write_text(token + "\n")
    monkeypatch.setenv("HF_TOKEN_FILE", str(tmp_path / "secret"))
    hub.publish("acme/withtoken", model_files())
    out = download_snapshot("acme/withtoken", tmp_path / "out")
    with pytest.raises(DownloadError) as err:
        download_snapshot("acme/not-there", tmp_path / "out2")
    assert "token cannot access it" in str(err.value), "with a token the hint changes"
    captured = capfd.readouterr()
    for text in (captured.out, captured.err, str(err.value), (out / MANIFEST_NAME).read_text()):
        assert token not in text and token[:8] not in text


def test_verify_files_exist(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"directory '.*nowhere' does not exist"):
        verify_files_exist(tmp_path / "nowhere")
    with pytest.raises(DownloadError) as err:
        verify_files_exist(tmp_path / "nowhere", ["config.json", "*.bin"], ".bin")
    assert "nowhere" in str(err.value) and "['config.json', '*.bin']" in str(err.value)
    assert "extension: .bin" in str(err.value)
    (tmp_path / "sub").mkdir()
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "sub/pytorch_model.bin").write_bytes(b"w")
    found = verify_files_exist(tmp_path, ["config.json", "*.safetensors|*pytorch_model.bin"])
    assert found == ["config.json", "sub/pytorch_model.bin"]
    assert verify_files_exist(tmp_path, file_extension=".bin") == ["sub/pytorch_model.bin"]
    with pytest.raises(DownloadError, match=r"matches 'tokenizer\.json'"):
        verify_files_exist(tmp_path, ["config.json", "tokenizer.json"])
    with pytest.raises(DownloadError, match=r"no '\*\.onnx' file in"):
        verify_files_exist(tmp_path, file_extension=".onnx")


@pytest.mark.parametrize("repo_id", ["acme/bad--name", "a/b/c", "acme/" + "x" * 120, "-acme/x",
                                     "acme/name.git"])
def test_malformed_repo_id_is_one_line_and_not_its_own_cause(
    hub: HubMirror, tmp_path: Path, repo_id: str
) -> None:
    with pytest.raises(DownloadError) as err:
        download_snapshot(repo_id, tmp_path / "out")
    message = str(err.value)
    assert f"{repo_id!r}@'main' is not a valid repo id or revision" in message
    assert "\n" not in message
    assert err.value.__cause__ is not None and err.value.__cause__ is not err.value
    assert type(err.value.__cause__).__name__ == "HFValidationError"
    assert not (tmp_path / "out").exists()


def test_unknown_errors_pass_through_unchanged(
    hub: HubMirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    boom = RuntimeError("unexpected")

    def fail(*_args: object, **_kwargs: object) -> None:
        raise boom

    monkeypatch.setattr(hubmod.HfApi, "repo_info", fail)
    with pytest.raises(RuntimeError) as err:
        download_snapshot("acme/anything", tmp_path / "out")
    assert err.value is boom and err.value.__cause__ is None


def test_transport_errors_of_the_installed_client_are_retried() -> None:
    import httpx2

    assert httpx2.TransportError in hubmod.TRANSPORT_ERRORS
    assert hubmod._is_transient(httpx2.ConnectError("refused"))
    assert not hubmod._is_transient(ValueError("bad"))


# --- a real server that fails: tests/apps/flaky_proxy.py in front of the mirror ----------------


def no_wait(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make the backoff between our attempts instant; return the waits asked for."""
    waits: list[float] = []
    monkeypatch.setattr(hubmod, "_sleep", waits.append)
    return waits


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_a_5xx_or_429_from_the_server_then_success_is_retried(
    flaky_hub: FlakyProxy, hub: HubMirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str], status: int,
) -> None:
    sha = hub.publish(f"acme/flaky-{status}", model_files())
    waits = no_wait(monkeypatch)
    flaky_hub.add(Fault("/api/models/", status=status, times=2))
    out = download_snapshot(f"acme/flaky-{status}", tmp_path / "out")
    assert manifest_of(out)["commit"] == sha
    assert verify_manifest(out, checksums=True) == len(model_files())
    answered = [r.status for r in flaky_hub.requests if r.path.startswith("/api/models/")]
    assert answered[:3] == [status, status, 200]
    assert waits == [1.0, 2.0]
    err = capfd.readouterr().err
    assert "retry 1/3" in err and "retry 2/3" in err and f"{status}" in err


def test_a_5xx_while_fetching_a_file_is_retried(
    flaky_hub: FlakyProxy, hub: HubMirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.publish("acme/flaky-file", model_files())
    waits = no_wait(monkeypatch)
    flaky_hub.add(Fault("/model.safetensors", status=503, times=1, method="GET"))
    out = download_snapshot("acme/flaky-file", tmp_path / "out")
    assert (out / "model.safetensors").read_bytes() == WEIGHTS
    gets = [r.status for r in flaky_hub.requests
            if r.method == "GET" and r.path.endswith("/model.safetensors")]
    assert gets == [503, 200]
    assert waits == [1.0]


def test_a_download_cut_short_resumes_from_its_partial_file(
    flaky_hub: FlakyProxy, hub: HubMirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big, cut = os.urandom(3 * 2**20), 2**20 + 7
    hub.publish("acme/cut", {"config.json": "{}", "model.safetensors": big})
    waits = no_wait(monkeypatch)
    # huggingface_hub writes whole chunks (10 MiB by default) to the partial file: smaller ones
    # let a 3 MiB file show it
    monkeypatch.setattr("huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE", 2**18)
    flaky_hub.add(Fault("/model.safetensors", cut_after=cut, method="GET"))
    out = download_snapshot("acme/cut", tmp_path / "out")
    assert (out / "model.safetensors").read_bytes() == big
    first, second = [r for r in flaky_hub.requests
                     if r.method == "GET" and r.path.endswith("/model.safetensors")]
    assert (first.range, first.status, first.sent) == (None, 200, cut)
    # the second request asks only for what the partial file lacks
    start = int(second.range.removeprefix("bytes=").removesuffix("-"))
    assert 0 < start <= cut and second.range == f"bytes={start}-"
    assert (second.status, second.sent) == (206, len(big) - start)
    assert waits == [], "huggingface_hub resumed the file itself; no attempt of ours was spent"
    assert not list(out.rglob("*.incomplete"))


def test_every_attempt_cut_short_fails_in_one_line(
    flaky_hub: FlakyProxy, hub: HubMirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.publish("acme/cut-always", {"config.json": "{}", "model.safetensors": WEIGHTS})
    monkeypatch.setenv("HF_DOWNLOAD_RETRIES", "1")
    waits = no_wait(monkeypatch)
    monkeypatch.setattr("huggingface_hub.file_download.time.sleep", lambda _s: None)
    flaky_hub.add(Fault("/model.safetensors", cut_after=100, method="GET", times=100))
    with pytest.raises(DownloadError, match=r"failed after 2 attempts at http://127") as err:
        download_snapshot("acme/cut-always", tmp_path / "out")
    assert "\n" not in str(err.value)
    assert waits == [1.0]
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()


# --- every file checked against the Hub's own hash (git blob id, LFS sha256) ------------------


@pytest.mark.parametrize("path", ["config.json", "model.safetensors"])
def test_a_file_damaged_on_the_way_is_fetched_again(
    flaky_hub: FlakyProxy, hub: HubMirror, tmp_path: Path, path: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    hub.publish(f"acme/damaged-{path}", model_files())
    flaky_hub.add(Fault(f"/{path}", corrupt=True, method="GET"))
    out = download_snapshot(f"acme/damaged-{path}", tmp_path / "out")
    assert verify_manifest(out, checksums=True) == len(model_files())
    assert (out / path).read_bytes() == model_files()[path] if path == "model.safetensors" \
        else json.loads((out / path).read_text()) == {"version": "1"}
    gets = [r for r in flaky_hub.requests if r.method == "GET" and r.path.endswith(f"/{path}")]
    assert len(gets) == 2
    kind = "git blob id" if path == "config.json" else "sha256"
    assert f"'{path}' {kind} " in capfd.readouterr().err


def test_a_file_damaged_every_time_fails_naming_the_hash(
    flaky_hub: FlakyProxy, hub: HubMirror, tmp_path: Path
) -> None:
    hub.publish("acme/damaged-always", model_files())
    flaky_hub.add(Fault("/config.json", corrupt=True, method="GET", times=10))
    pattern = (r"'config.json' git blob id [0-9a-f]{40} does not match the Hub's [0-9a-f]{40} "
               r"\(after downloading it again\)")
    with pytest.raises(DownloadError, match=pattern):
        download_snapshot("acme/damaged-always", tmp_path / "out")
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()


def test_files_left_with_huggingface_hub_metadata_are_checked_not_trusted(
    hub: HubMirror, tmp_path: Path
) -> None:
    from huggingface_hub import snapshot_download

    sha = hub.publish("acme/leftover", model_files())
    out = tmp_path / "out"
    snapshot_download("acme/leftover", revision=sha, local_dir=out, endpoint=hub.url, token=False)
    assert (out / ".cache/huggingface/download/config.json.metadata").is_file()
    config = (out / "config.json").read_bytes()
    # same size, other bytes, the old time stamps (as bit rot would leave them): the metadata
    # still vouches for both files
    for name, data in (("config.json", config.upper()), ("model.safetensors", bytes(len(WEIGHTS)))):
        stat = (out / name).stat()
        (out / name).write_bytes(data)
        os.utime(out / name, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    download_snapshot("acme/leftover", out)
    assert (out / "config.json").read_bytes() == config
    assert (out / "model.safetensors").read_bytes() == WEIGHTS
    files = {f["path"]: f for f in manifest_of(out)["files"]}
    assert files["config.json"]["sha256"] == hashlib.sha256(config).hexdigest()
    assert verify_manifest(out, checksums=True) == len(model_files())


def mtimes(directory: Path) -> dict[str, int]:
    """Every file under `directory` (the manifest included) → its mtime in ns."""
    return {p.relative_to(directory).as_posix(): p.stat().st_mtime_ns
            for p in directory.rglob("*") if p.is_file()}


def test_second_download_of_the_same_commit_touches_nothing(
    hub: HubMirror, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    sha = hub.publish("acme/again", model_files())
    out = download_snapshot("acme/again", tmp_path / "volume" / "tool", revision="main")
    before = mtimes(out)
    capfd.readouterr()
    assert download_snapshot("acme/again", out, revision=sha) == out
    err = capfd.readouterr().err
    assert f"acme/again@{sha} ({sha[:12]}) is already in {out}" in err
    assert "nothing to download" in err and "downloading" not in err
    assert mtimes(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["tool"], "the lock file is gone"


def test_a_moved_branch_replaces_the_files_and_drops_the_old_ones(
    hub: HubMirror, tmp_path: Path
) -> None:
    hub.publish("acme/moves", model_files())
    out = download_snapshot("acme/moves", tmp_path / "tool")
    files = {k: v for k, v in model_files("2").items() if k != "extra/notes.txt"}
    sha = hub.publish("acme/moves", files)
    download_snapshot("acme/moves", out)
    assert manifest_of(out)["commit"] == sha
    assert not (out / "extra/notes.txt").exists()
    assert json.loads((out / "config.json").read_text()) == {"version": "2"}
    assert verify_manifest(out, checksums=True) == len(files)


@pytest.mark.parametrize("damage", ["truncate", "delete", "other patterns"])
def test_a_damaged_or_different_download_is_fetched_again(
    hub: HubMirror, tmp_path: Path, damage: str
) -> None:
    hub.publish("acme/damaged", model_files())
    out = download_snapshot("acme/damaged", tmp_path / "tool")
    weights = out / "model.safetensors"
    if damage == "truncate":
        weights.write_bytes(WEIGHTS[:100])
    elif damage == "delete":
        weights.unlink()
    patterns = ["*.safetensors", "*.json"] if damage == "other patterns" else None
    download_snapshot("acme/damaged", out, allow_patterns=patterns)
    assert weights.read_bytes() == WEIGHTS
    assert manifest_of(out)["allow_patterns"] == patterns
    assert verify_manifest(out, checksums=True) == (3 if patterns else len(model_files()))
