"""The download entry points run as the Dockerfiles run them, against a real Olah mirror."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, HubMirror, flaky_proxy

from pyhelpers.manifest import MANIFEST_NAME, verify_manifest

TOOL = ROOT / "docker/common/download/tool.py"
CHAT = ROOT / "docker/vllm/download/chat.py"
TRT_MODEL = ROOT / "docker/trt/download/model.py"
TRT_ENGINE = ROOT / "docker/trt/download/engine.py"
MODELS = ROOT / "docker/common/download/models.py"
TOKEN = "hf_EntryPointSecret987"
L80, L90, L120 = (f"sm{n}_trt-llm-1.2.1_cuda12.9" for n in (80, 90, 120))


def run(script: Path, hub: HubMirror, tmp_path: Path, pythonpath: Path | None = ROOT,
        args: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess[str]:
    """Run an entry script (with `args`) in a clean environment plus `env`; capture its output."""
    full = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "HF_ENDPOINT": hub.url,
            "HF_HOME": str(tmp_path / "hf-home"), "HF_TOKEN_FILE": str(tmp_path / "no-secret"),
            "HF_HUB_DISABLE_TELEMETRY": "1", **env}
    if pythonpath is not None:
        full["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, str(script), *args], env=full, capture_output=True,
                          text=True, timeout=120, check=False)


def assert_one_line_failure(proc: subprocess.CompletedProcess[str], *parts: str) -> None:
    """Status 1, no traceback, and an error line holding every part."""
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    errors = [line for line in proc.stderr.splitlines() if "✗" in line]
    assert len(errors) == 1, proc.stderr
    for part in parts:
        assert part in errors[0]


def test_tool_model_from_hub(hub: HubMirror, tmp_path: Path) -> None:
    sha = hub.publish("acme/tool", {"config.json": "{}", "model.safetensors": os.urandom(5000)})
    out = tmp_path / "tool"
    proc = run(TOOL, hub, tmp_path, TOOL_MODEL="acme/tool", TOOL_MODEL_PATH=str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / MANIFEST_NAME).read_text())["commit"] == sha
    assert verify_manifest(out, checksums=True) == 2


def test_tool_model_empty_is_skipped(hub: HubMirror, tmp_path: Path) -> None:
    proc = run(TOOL, hub, tmp_path, TOOL_MODEL="", TOOL_MODEL_PATH=str(tmp_path / "tool"))
    assert proc.returncode == 0 and "TOOL_MODEL is empty" in proc.stderr
    assert not (tmp_path / "tool").exists()


def test_tool_model_local_dir_is_copied(hub: HubMirror, tmp_path: Path) -> None:
    src = tmp_path / "local model"
    src.mkdir()
    (src / "config.json").write_text("{}")
    (src / "pytorch_model.bin").write_bytes(b"weights")
    out = tmp_path / "tool"
    proc = run(TOOL, hub, tmp_path, TOOL_MODEL=str(src), TOOL_MODEL_PATH=str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "pytorch_model.bin").read_bytes() == b"weights"
    check = subprocess.run([sys.executable, "-m", "pyhelpers.manifest", "verify", str(out),
                            "--checksums"], cwd=ROOT, capture_output=True, text=True,
                           timeout=60, check=False)
    assert check.returncode == 0, check.stderr


def test_tool_model_without_weights_fails(hub: HubMirror, tmp_path: Path) -> None:
    hub.publish("acme/noweights", {"config.json": "{}", "README.md": "hi"})
    proc = run(TOOL, hub, tmp_path, TOOL_MODEL="acme/noweights",
               TOOL_MODEL_PATH=str(tmp_path / "tool"))
    assert_one_line_failure(proc, "*.safetensors|pytorch_model.bin")


@pytest.mark.parametrize(("config", "method"), [
    ({"quantization_config": {"quant_method": "awq"}}, "awq"),
    ({"architectures": ["X"]}, None),
])
def test_chat_model_records_quantization(
    hub: HubMirror, tmp_path: Path, config: dict, method: str | None
) -> None:
    repo = f"acme/chat-{method}"
    hub.publish(repo, {"config.json": json.dumps(config), "tokenizer.json": "{}",
                       "model.safetensors": os.urandom(5000)})
    out = tmp_path / "chat"
    proc = run(CHAT, hub, tmp_path, CHAT_MODEL=repo, CHAT_MODEL_PATH=str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / MANIFEST_NAME).read_text())["quant_method"] == method
    assert ("unquantized" in proc.stderr) is (method is None)
    assert verify_manifest(out) == 3


def test_token_from_secret_file_never_printed(hub: HubMirror, tmp_path: Path) -> None:
    (tmp_path / "hf_token").write_text(TOKEN + "\n")
    hub.publish("acme/chat-tok", {"config.json": "{}", "tokenizer.json": "{}",
                                  "model.safetensors": os.urandom(5000)})
    ok = run(CHAT, hub, tmp_path, CHAT_MODEL="acme/chat-tok",
             CHAT_MODEL_PATH=str(tmp_path / "chat"), HF_TOKEN_FILE=str(tmp_path / "hf_token"))
    bad = run(CHAT, hub, tmp_path, CHAT_MODEL="acme/missing", LOG_LEVEL="info",
              CHAT_MODEL_PATH=str(tmp_path / "chat2"), HF_TOKEN_FILE=str(tmp_path / "hf_token"))
    assert ok.returncode == 0, ok.stderr
    assert_one_line_failure(bad, "token cannot access it")
    for text in (ok.stdout, ok.stderr, bad.stdout, bad.stderr):
        assert TOKEN not in text and TOKEN[:10] not in text


def trt_repo_files() -> dict[str, bytes | str]:
    """A TRT engine repo: tokenizer and config at the top, engines nested by label."""
    files: dict[str, bytes | str] = {"config.json": "{}", "tokenizer.json": "{}",
                                     "README.md": "r", ".gitattributes": "*.engine lfs"}
    for label in (L90, L120):
        base = f"trt-llm/engines/{label}"
        files[f"{base}/rank0.engine"] = os.urandom(5000)
        files[f"{base}/config.json"] = json.dumps({"label": label})
        files[f"{base}/build_metadata.json"] = json.dumps({"sm_arch": label.split("_")[0]})
    return files


def test_trt_model_skips_engines_and_readme(hub: HubMirror, tmp_path: Path) -> None:
    hub.publish("acme/trt-m", trt_repo_files())
    out = tmp_path / "chat"
    proc = run(TRT_MODEL, hub, tmp_path, TRT_ENGINE_REPO="acme/trt-m", CHAT_MODEL_PATH=str(out))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "config.json",
                                                     "tokenizer.json"]


def test_trt_engine_is_flattened(hub: HubMirror, tmp_path: Path) -> None:
    sha = hub.publish("acme/trt-e", trt_repo_files())
    out = tmp_path / "engines" / "trt-chat"
    proc = run(TRT_ENGINE, hub, tmp_path, TRT_ENGINE_REPO="acme/trt-e",
               TRT_ENGINE_LABEL=L120, TRT_ENGINE_DIR=str(out))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME, "build_metadata.json",
                                                     "config.json", "rank0.engine"]
    assert json.loads((out / "config.json").read_text()) == {"label": L120}
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["commit"] == sha and manifest["engine_label"] == L120
    assert verify_manifest(out, checksums=True) == 3
    assert [p.name for p in out.parent.iterdir()] == ["trt-chat"], "staging dir removed"


def test_trt_engine_missing_label_lists_real_ones(hub: HubMirror, tmp_path: Path) -> None:
    hub.publish("acme/trt-l", trt_repo_files())
    out = tmp_path / "engines" / "trt-chat"
    proc = run(TRT_ENGINE, hub, tmp_path, TRT_ENGINE_REPO="acme/trt-l",
               TRT_ENGINE_LABEL=L80, TRT_ENGINE_DIR=str(out))
    assert_one_line_failure(proc, f"TRT_ENGINE_LABEL {L80!r}",
                            f"labels there: {L120}, {L90}")
    assert not out.exists()


def test_trt_engine_bad_label_fails_before_any_request(hub: HubMirror, tmp_path: Path) -> None:
    proc = run(TRT_ENGINE, hub, tmp_path, TRT_ENGINE_REPO="acme/trt-l",
               TRT_ENGINE_LABEL="../etc", TRT_ENGINE_DIR=str(tmp_path / "e"),
               HF_ENDPOINT="http://127.0.0.1:9")
    assert_one_line_failure(proc, "TRT_ENGINE_LABEL '../etc' is not valid")


def test_without_pythonpath_one_line_says_how(hub: HubMirror, tmp_path: Path) -> None:
    for script in (TOOL, CHAT, TRT_MODEL, TRT_ENGINE):
        proc = run(script, hub, tmp_path, pythonpath=None, TOOL_MODEL="x/y")
        assert proc.returncode == 1
        assert "Traceback" not in proc.stderr
        assert "PYTHONPATH" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def app_layout(tmp_path: Path, stack: str) -> Path:
    """The download code laid out as in the image's /app (and the models stage's /build)."""
    app = tmp_path / "app"
    shutil.copytree(ROOT / "pyhelpers", app / "pyhelpers")
    shutil.copytree(ROOT / "docker/common/download", app / "common/download")
    if stack != "tool":
        shutil.copytree(ROOT / "docker" / stack / "download", app / "download")
    return app


def test_image_layout_runs_without_the_repository(hub: HubMirror, tmp_path: Path) -> None:
    app = app_layout(tmp_path, "trt")
    hub.publish("acme/trt-app", trt_repo_files())
    out = tmp_path / "engine"
    proc = run(app / "download/engine.py", hub, tmp_path, pythonpath=app,
               TRT_ENGINE_REPO="acme/trt-app", TRT_ENGINE_LABEL=L90, TRT_ENGINE_DIR=str(out))
    assert proc.returncode == 0, proc.stderr
    hub.publish("acme/tool-app", {"config.json": "{}", "model.safetensors": os.urandom(5000)})
    proc = run(app / "common/download/tool.py", hub, tmp_path, pythonpath=app,
               TOOL_MODEL="acme/tool-app", TOOL_MODEL_PATH=str(tmp_path / "tool"))
    assert proc.returncode == 0, proc.stderr


def local_chat_dir(parent: Path) -> Path:
    """A small quantized chat model directory on disk, as a user would point CHAT_MODEL at."""
    src = parent / "my chat-model"
    src.mkdir(parents=True)
    (src / "config.json").write_text(json.dumps({"quantization_config": {"quant_method": "awq"}}))
    (src / "tokenizer.json").write_text("{}")
    (src / "model.safetensors").write_bytes(b"weights" * 100)
    return src


def test_chat_model_local_dir_is_copied(hub: HubMirror, tmp_path: Path) -> None:
    src = local_chat_dir(tmp_path)
    out = tmp_path / "chat"
    proc = run(CHAT, hub, tmp_path, CHAT_MODEL=str(src), CHAT_MODEL_PATH=str(out),
               HF_ENDPOINT="http://127.0.0.1:9")  # no Hub call: an unreachable one would fail
    assert proc.returncode == 0, proc.stderr
    assert (out / "model.safetensors").read_bytes() == b"weights" * 100
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["quant_method"] == "awq" and manifest["repo_id"] is None
    assert verify_manifest(out, checksums=True) == 3


@pytest.mark.parametrize(("script", "kind", "path_var"), [
    (CHAT, "chat", "CHAT_MODEL_PATH"), (TOOL, "tool", "TOOL_MODEL_PATH")])
def test_build_context_reference_is_copied_from_local_models_dir(
    hub: HubMirror, tmp_path: Path, script: Path, kind: str, path_var: str
) -> None:
    host = local_chat_dir(tmp_path / "host")
    build_local = tmp_path / "build" / "local"
    shutil.copytree(host, build_local / kind)
    out = tmp_path / kind
    model = "CHAT_MODEL" if kind == "chat" else "TOOL_MODEL"
    proc = run(script, hub, tmp_path, LOCAL_MODELS_DIR=str(build_local), HF_ENDPOINT="http://127.0.0.1:9",
               **{model: "local:my chat-model", path_var: str(out)})
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["local_source"] == "local:my chat-model"
    assert str(tmp_path) not in json.dumps(manifest)
    assert verify_manifest(out, checksums=True) == 3


@pytest.mark.parametrize("script", [CHAT, TOOL])
def test_local_reference_without_the_directory_is_one_line(
    hub: HubMirror, tmp_path: Path, script: Path
) -> None:
    proc = run(script, hub, tmp_path, LOCAL_MODELS_DIR=str(tmp_path / "nothing"),
               CHAT_MODEL="local:x", TOOL_MODEL="local:x", CHAT_MODEL_PATH=str(tmp_path / "c"),
               TOOL_MODEL_PATH=str(tmp_path / "t"))
    kind = "chat" if script == CHAT else "tool"
    assert_one_line_failure(proc, "'local:x' names a local", f"{tmp_path / 'nothing' / kind}")
    assert not (tmp_path / "c").exists() and not (tmp_path / "t").exists()


@pytest.mark.parametrize("value", ["relative/dir", "/no/such/dir", "/tmp/../etc"])
def test_tool_model_path_that_is_not_an_absolute_dir_fails(
    hub: HubMirror, tmp_path: Path, value: str
) -> None:
    (tmp_path / "relative" / "dir").mkdir(parents=True)
    proc = run(TOOL, hub, tmp_path, TOOL_MODEL=value, TOOL_MODEL_PATH=str(tmp_path / "t"),
               HF_ENDPOINT="http://127.0.0.1:9", HF_DOWNLOAD_RETRIES="0")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "t").exists()


def test_trt_engine_label_follows_the_validator_rule(hub: HubMirror, tmp_path: Path) -> None:
    proc = run(TRT_ENGINE, hub, tmp_path, TRT_ENGINE_REPO="acme/trt-x",
               TRT_ENGINE_LABEL="sm90_tp1", TRT_ENGINE_DIR=str(tmp_path / "e"),
               HF_ENDPOINT="http://127.0.0.1:9")
    assert_one_line_failure(proc, "TRT_ENGINE_LABEL 'sm90_tp1' is not valid",
                            "sm{arch}_trt-llm-{version}_cuda{version}")


@pytest.mark.parametrize(("script", "var", "env"), [
    (TOOL, "TOOL_MODEL_PATH", {"TOOL_MODEL": "acme/t-target"}),
    (CHAT, "CHAT_MODEL_PATH", {"CHAT_MODEL": "acme/t-target"}),
    (TRT_MODEL, "CHAT_MODEL_PATH", {"TRT_ENGINE_REPO": "acme/t-target"}),
    (TRT_ENGINE, "TRT_ENGINE_DIR", {"TRT_ENGINE_REPO": "acme/t-target", "TRT_ENGINE_LABEL": L90}),
])
def test_a_target_that_is_a_file_or_unwritable_is_one_line_before_any_download(
    hub: HubMirror, tmp_path: Path, script: Path, var: str, env: dict[str, str]
) -> None:
    (tmp_path / "a file").write_text("x")
    cases = {
        str(tmp_path / "a file"): "is not a directory",
        str(tmp_path / "a file" / "model"): f"would be under {str(tmp_path / 'a file')!r}",
        "/proc/self/no-such-dir/model": "cannot be written",
    }
    for target, problem in cases.items():
        proc = run(script, hub, tmp_path, HF_ENDPOINT="http://127.0.0.1:9", HF_DOWNLOAD_RETRIES="0",
                   **env, **{var: target})
        assert_one_line_failure(proc, f"{var} {target!r}", problem)
        assert "GiB" not in proc.stderr and "FileExistsError" not in proc.stderr
        assert "127.0.0.1:9" not in proc.stderr, "checked before any request"
    assert (tmp_path / "a file").read_text() == "x"


def test_run_entry_turns_an_os_error_into_one_line(capfd: pytest.CaptureFixture[str]) -> None:
    from pyhelpers.build_log import run_entry

    def main() -> None:
        raise OSError(28, "No space left on device", "/opt/models/tool/model.safetensors")

    assert run_entry(main, "[tool-model]") == 1
    err = capfd.readouterr().err
    assert err == ("[tool-model] ✗ [Errno 28] No space left on device: "
                   "'/opt/models/tool/model.safetensors'\n")


def test_trt_engine_repo_without_engines_says_what_is_missing_and_what_it_holds(
    hub: HubMirror, tmp_path: Path
) -> None:
    hub.publish("acme/plain-model", {"config.json": "{}", "tokenizer.json": "{}",
                                     "model.safetensors": os.urandom(5000)})
    out = tmp_path / "engines" / "trt-chat"
    proc = run(TRT_ENGINE, hub, tmp_path, TRT_ENGINE_REPO="acme/plain-model",
               TRT_ENGINE_LABEL=L90, TRT_ENGINE_DIR=str(out))
    assert_one_line_failure(
        proc, "TRT_ENGINE_REPO acme/plain-model@main has no trt-llm/engines/ folder",
        "it holds: config.json, model.safetensors, tokenizer.json")
    assert "not found" not in proc.stderr
    assert "HF_TOKEN" not in proc.stderr
    files = {**trt_repo_files(), "extra/notes.txt": "n"}
    files = {k: v for k, v in files.items() if not k.startswith("trt-llm/")}
    hub.publish("acme/plain-with-folder", files)
    proc = run(TRT_ENGINE, hub, tmp_path, TRT_ENGINE_REPO="acme/plain-with-folder",
               TRT_ENGINE_LABEL=L90, TRT_ENGINE_DIR=str(out))
    assert_one_line_failure(proc, "has no trt-llm/engines/ folder", "extra/, ")
    assert not out.exists()


@pytest.mark.parametrize(("meta", "problem"), [
    ({"tp_size": 1}, "build_metadata.json has no 'sm_arch'"),
    (None, "holds no build_metadata.json"),
    ("{not json", "build_metadata.json is not valid JSON"),
])
def test_an_incomplete_engine_leaves_nothing_behind(
    hub: HubMirror, tmp_path: Path, meta: object, problem: str
) -> None:
    files = trt_repo_files()
    key = f"trt-llm/engines/{L90}/build_metadata.json"
    if meta is None:
        del files[key]
    else:
        files[key] = meta if isinstance(meta, str) else json.dumps(meta)
    repo = f"acme/trt-bad-{abs(hash(problem)) % 1000}"
    hub.publish(repo, files)
    out = tmp_path / "engines" / "trt-chat"
    proc = run(TRT_ENGINE, hub, tmp_path, TRT_ENGINE_REPO=repo, TRT_ENGINE_LABEL=L90,
               TRT_ENGINE_DIR=str(out))
    assert_one_line_failure(proc, f"engine {L90} of {repo}", problem)
    assert list((tmp_path / "engines").iterdir()) == [], "no engine file and no staging dir left"


def test_an_interrupted_engine_download_is_resumed_from_its_staging_dir(
    flaky_hub: flaky_proxy.FlakyProxy, hub: HubMirror, tmp_path: Path
) -> None:
    hub.publish("acme/trt-cut", trt_repo_files())
    out = tmp_path / "engines" / "trt-chat"
    env = {"TRT_ENGINE_REPO": "acme/trt-cut", "TRT_ENGINE_LABEL": L90, "TRT_ENGINE_DIR": str(out),
           "HF_ENDPOINT": flaky_hub.url, "HF_DOWNLOAD_RETRIES": "0"}
    flaky_hub.add(flaky_proxy.Fault("/rank0.engine", status=503, method="GET"))
    assert_one_line_failure(run(TRT_ENGINE, hub, tmp_path, **env), "failed after 1 attempts")
    staging = tmp_path / "engines" / ".trt-chat.download"
    assert not out.exists(), "nothing reaches TRT_ENGINE_DIR before the engine is complete"
    assert (staging / f"trt-llm/engines/{L90}/config.json").is_file(), "kept for the next run"
    again = run(TRT_ENGINE, hub, tmp_path, **env)
    assert again.returncode == 0, again.stderr
    assert verify_manifest(out, checksums=True) == 3
    assert [p.name for p in out.parent.iterdir()] == ["trt-chat"], "staging dir removed"
    gets = [r.path.rsplit("/", 1)[-1] for r in flaky_hub.requests
            if r.method == "GET" and "/resolve/" in r.path and r.status in (200, 206)]
    assert sorted(gets) == ["build_metadata.json", "config.json", "rank0.engine"], \
        "each file fetched once over both runs"


def mtimes(directory: Path) -> dict[str, int]:
    """Every file under `directory` → its mtime in ns."""
    return {p.relative_to(directory).as_posix(): p.stat().st_mtime_ns
            for p in directory.rglob("*") if p.is_file()}


def volume_env(volume: Path) -> dict[str, str]:
    """The three model paths of the trt stack in one volume, as the Kubernetes component has."""
    return {"CHAT_MODEL_PATH": str(volume / "chat"), "TRT_ENGINE_DIR": str(volume / "trt-chat"),
            "TOOL_MODEL_PATH": str(volume / "tool"), "TRT_ENGINE_REPO": "acme/trt-vol",
            "TRT_ENGINE_LABEL": L90, "TOOL_MODEL": "acme/tool-vol", "TOOL_MODEL_REVISION": "v1"}


def without_time(manifest_path: Path) -> dict:
    """A manifest without its creation time."""
    manifest = json.loads(manifest_path.read_text())
    manifest.pop("created_at")
    return manifest


def test_models_fills_a_volume_as_the_build_does_and_a_second_run_changes_nothing(
    hub: HubMirror, tmp_path: Path
) -> None:
    hub.publish("acme/trt-vol", trt_repo_files())
    hub.publish("acme/tool-vol", {"config.json": "{}", "model.safetensors": os.urandom(5000)})
    hub.git("acme/tool-vol", "tag", "-f", "v1")
    app, volume, baked = app_layout(tmp_path, "trt"), tmp_path / "volume", tmp_path / "baked"
    # the build runs the repository's copy (the models stage's /build); the image its own
    build = run(MODELS, hub, tmp_path, args=("trt", str(ROOT / "docker/trt/download")),
                **volume_env(baked))
    first = run(app / "common/download/models.py", hub, tmp_path, pythonpath=app, args=("trt",),
                **volume_env(volume))
    assert build.returncode == 0, build.stderr
    assert first.returncode == 0, first.stderr
    for name, count in (("chat", 2), ("trt-chat", 3), ("tool", 2)):
        assert verify_manifest(volume / name, checksums=True) == count
        assert without_time(volume / name / MANIFEST_NAME) == \
            without_time(baked / name / MANIFEST_NAME)
    assert sorted(p.name for p in volume.iterdir()) == ["chat", "tool", "trt-chat"]
    before = mtimes(volume)
    second = run(app / "common/download/models.py", hub, tmp_path, pythonpath=app,
                 args=("trt",), **volume_env(volume))
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("nothing to download") == 3
    assert "downloading" not in second.stderr
    assert mtimes(volume) == before


def test_models_a_half_filled_volume_is_completed(hub: HubMirror, tmp_path: Path) -> None:
    hub.publish("acme/trt-vol", trt_repo_files())
    hub.publish("acme/tool-vol", {"config.json": "{}", "model.safetensors": os.urandom(5000)})
    hub.git("acme/tool-vol", "tag", "-f", "v1")
    volume = tmp_path / "volume"
    assert run(MODELS, hub, tmp_path, args=("trt", str(ROOT / "docker/trt/download")),
               **volume_env(volume)).returncode == 0
    # as an interrupted run leaves it: the engine's manifest gone, a file cut short
    (volume / "trt-chat" / MANIFEST_NAME).unlink()
    engine = volume / "trt-chat/rank0.engine"
    engine.write_bytes(engine.read_bytes()[:10])
    again = run(MODELS, hub, tmp_path, args=("trt", str(ROOT / "docker/trt/download")),
                **volume_env(volume))
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("nothing to download") == 2  # the tokenizer and the tool model
    assert verify_manifest(volume / "trt-chat", checksums=True) == 3


@pytest.mark.parametrize(("flags", "present"), [
    ({}, ["chat", "tool"]),
    ({"DEPLOY_TOOL": "0"}, ["chat"]),
    ({"DEPLOY_CHAT": "0"}, ["tool"]),
])
def test_models_fetches_what_the_deploy_mode_serves(
    hub: HubMirror, tmp_path: Path, flags: dict[str, str], present: list[str]
) -> None:
    hub.publish("acme/chat-dm", {"config.json": "{}", "tokenizer.json": "{}",
                                 "model.safetensors": os.urandom(5000)})
    hub.publish("acme/tool-dm", {"config.json": "{}", "model.safetensors": os.urandom(5000)})
    proc = run(MODELS, hub, tmp_path, args=("vllm", str(ROOT / "docker/vllm/download")),
               CHAT_MODEL="acme/chat-dm", TOOL_MODEL="acme/tool-dm",
               CHAT_MODEL_PATH=str(tmp_path / "v/chat"), TOOL_MODEL_PATH=str(tmp_path / "v/tool"),
               **flags)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == present


def test_models_stops_at_the_first_failing_step(hub: HubMirror, tmp_path: Path) -> None:
    hub.publish("acme/tool-ok", {"config.json": "{}", "model.safetensors": os.urandom(5000)})
    proc = run(MODELS, hub, tmp_path, args=("vllm", str(ROOT / "docker/vllm/download")),
               CHAT_MODEL="acme/absent", TOOL_MODEL="acme/tool-ok",
               CHAT_MODEL_PATH=str(tmp_path / "v/chat"), TOOL_MODEL_PATH=str(tmp_path / "v/tool"))
    assert_one_line_failure(proc, "repository acme/absent not found")
    assert not (tmp_path / "v/tool").exists()
    bad = run(MODELS, hub, tmp_path, args=("chat",))
    assert bad.returncode == 2 and "invalid choice: 'chat'" in bad.stderr


def test_models_with_log_format_json_writes_only_json_lines(hub: HubMirror, tmp_path: Path) -> None:
    """main.sh --download-models in a Kubernetes init container: one JSON object per line, no
    progress bar, at LOG_LEVEL=info."""
    hub.publish("acme/tool-json", {"config.json": "{}", "model.safetensors": os.urandom(5000)})
    proc = run(MODELS, hub, tmp_path, args=("tool",), LOG_FORMAT="json",
               TOOL_MODEL="acme/tool-json", TOOL_MODEL_PATH=str(tmp_path / "tool"))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines()]
    assert any(o["msg"].startswith("downloading acme/tool-json") for o in lines), lines
    assert {o["prefix"] for o in lines} == {"tool-model"}


@pytest.mark.parametrize(("script", "model_var", "path_var"),
                         [(TOOL, "TOOL_MODEL", "TOOL_MODEL_PATH"),
                          (CHAT, "CHAT_MODEL", "CHAT_MODEL_PATH")])
def test_the_target_directory_has_no_default_of_its_own(hub: HubMirror, tmp_path: Path,
                                                        script: Path, model_var: str,
                                                        path_var: str) -> None:
    """The models stage's ENV and src/config (for --download-models) say where; nothing else."""
    proc = run(script, hub, tmp_path, **{model_var: "acme/anything"})
    assert_one_line_failure(proc, f"{path_var} is not set: the directory to download into")
