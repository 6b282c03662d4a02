"""docker/common/download/validate.py: every rule, through the real CLI and its functions."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docker" / "common" / "download" / "validate.py"
VLLM_MODEL = "Qwen/Qwen3-8B-AWQ"
TRT_MODEL = "yapwithai/qwen3-30b-trt-awq"
TOOL_MODEL = "ProsusAI/finbert"
LABEL = "sm90_trt-llm-0.17.0_cuda12.8"
SETTINGS = (
    "ENGINE",
    "DEPLOY_MODE",
    "CHAT_MODEL",
    "TOOL_MODEL",
    "TRT_ENGINE_REPO",
    "TRT_ENGINE_LABEL",
    "ROOT_DIR",
    "ALLOW_UNLISTED_MODELS",
    "LOG_LEVEL",
)

# Values that are not Hub repo ids: shell metacharacters, traversal, wrong shapes.
HOSTILE_IDS = [
    "owner/model; rm -rf /",
    "owner/model && curl evil",
    "owner/model | sh",
    "$(reboot)/model",
    "`id`/model",
    "owner/${HF_TOKEN}",
    "owner/model > /etc/passwd",
    "owner/model\nTAG=x",
    "owner/model\x00",
    "../../etc/passwd",
    "owner/../secrets",
    "./owner/model",
    "owner/model/extra",
    "a/b/c",
    "owner//model",
    "/model",
    "owner/",
    "owner model/x",
    "owner/mo del",
    "owner--x/model",
    "owner/mo..del",
    "-owner/model",
    "owner/model-",
    ".owner/model",
    "owner/model.",
    "ownér/model",
    "owner/model*",
    "owner/model?",
    "owner\\model",
    "owner/" + "m" * 91,
    "gpt2",
    "",
]


def run_cli(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """Run validate.py in isolated mode without site-packages (stdlib only), with env."""
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-I", "-S", str(SCRIPT), *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def load_validate() -> ModuleType:
    """Import validate.py by path (it is a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("validate_under_test", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


validate = load_validate()


def test_vllm_both_passes_with_one_line_per_check() -> None:
    res = run_cli(ENGINE="vllm", DEPLOY_MODE="both", CHAT_MODEL=VLLM_MODEL, TOOL_MODEL=TOOL_MODEL)
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""
    assert res.stderr.splitlines() == [
        "[validate] ✓ DEPLOY_MODE 'both'",
        f"[validate] ✓ CHAT_MODEL '{VLLM_MODEL}' is allowlisted (vllm chat allowlist)",
        f"[validate] ✓ TOOL_MODEL '{TOOL_MODEL}' is allowlisted (tool-model allowlist)",
    ]


def test_trt_chat_passes_and_engine_repo_defaults_to_chat_model() -> None:
    res = run_cli(ENGINE="trt", DEPLOY_MODE="chat", CHAT_MODEL=TRT_MODEL, TRT_ENGINE_LABEL=LABEL)
    assert res.returncode == 0, res.stderr
    assert f"[validate] ✓ TRT_ENGINE_REPO '{TRT_MODEL}'" in res.stderr
    assert f"[validate] ✓ TRT_ENGINE_LABEL '{LABEL}'" in res.stderr


def test_flags_override_the_environment() -> None:
    res = run_cli(
        "--deploy-mode",
        "tool",
        "--tool-model",
        TOOL_MODEL,
        DEPLOY_MODE="bogus",
        TOOL_MODEL="bad id",
    )
    assert res.returncode == 0, res.stderr
    assert "bogus" not in res.stderr


def test_tool_mode_ignores_engine_and_chat_model() -> None:
    res = run_cli(ENGINE="nope", DEPLOY_MODE="tool", CHAT_MODEL="x y", TOOL_MODEL=TOOL_MODEL)
    assert res.returncode == 0, res.stderr
    assert "CHAT_MODEL" not in res.stderr and "ENGINE" not in res.stderr


@pytest.mark.parametrize("mode", ["", "all", "Chat", "chat,tool", "both "])
def test_invalid_deploy_mode_names_the_valid_modes(mode: str) -> None:
    res = run_cli(ENGINE="vllm", DEPLOY_MODE=mode, CHAT_MODEL=VLLM_MODEL, TOOL_MODEL=TOOL_MODEL)
    assert res.returncode == 1
    assert res.stderr == (
        f"[validate] ✗ DEPLOY_MODE {mode!r} is not valid; use one of: chat, tool, both\n"
    )


@pytest.mark.parametrize("engine", ["", "tgi", "VLLM", "trt-llm"])
def test_invalid_engine_with_chat_names_vllm_and_trt(engine: str) -> None:
    res = run_cli(ENGINE=engine, DEPLOY_MODE="chat", CHAT_MODEL=VLLM_MODEL)
    assert res.returncode == 1
    assert f"[validate] ✗ ENGINE {engine!r} is not valid; use one of: vllm, trt" in res.stderr


@pytest.mark.parametrize("bad", HOSTILE_IDS)
def test_hostile_chat_ids_are_rejected_with_the_valid_shape(bad: str) -> None:
    problem = validate.repo_id_problem(bad)
    assert problem is not None, bad
    result = validate.check_model(
        "CHAT_MODEL", bad, ("Qwen/Qwen3-8B-AWQ",), "vllm chat allowlist", allow_unlisted=True
    )
    assert result.status == "fail"
    if bad:
        assert result.message.startswith(f"CHAT_MODEL {bad!r} ")
        assert "owner/name" in result.message and "example: Qwen/Qwen3-8B-AWQ" in result.message
    assert "\n" not in result.message and "\x00" not in result.message


@pytest.mark.parametrize("bad", [b for b in HOSTILE_IDS if b and "\x00" not in b][:12])
def test_hostile_ids_through_the_cli_never_pass_nor_echo_raw_control_characters(
    bad: str, tmp_path: Path
) -> None:
    res = run_cli(DEPLOY_MODE="tool", TOOL_MODEL=bad, ALLOW_UNLISTED_MODELS="1", cwd=tmp_path)
    assert res.returncode == 1
    assert len(res.stderr.splitlines()) == 2  # the mode line and one error line
    assert "is not a valid Hugging Face repo id" in res.stderr
    assert not any(tmp_path.iterdir())  # nothing made where it ran (a '../x' or '$(touch x)')


def test_repo_id_length_limit_is_96() -> None:
    assert validate.repo_id_problem("o/" + "m" * 94) is None
    assert validate.repo_id_problem("o/" + "m" * 95) == "is 97 characters long"


def test_unknown_repo_gets_the_closest_allowlisted_names() -> None:
    res = run_cli(ENGINE="vllm", DEPLOY_MODE="chat", CHAT_MODEL="Qwen/Qwen3-8B-AWK")
    assert res.returncode == 1
    assert (
        "✗ CHAT_MODEL 'Qwen/Qwen3-8B-AWK' is not in the vllm chat allowlist; "
        "did you mean: Qwen/Qwen3-8B-AWQ"
    ) in res.stderr


def test_unknown_repo_without_near_match_lists_the_allowed_ones() -> None:
    res = run_cli(DEPLOY_MODE="tool", TOOL_MODEL="zz/zz")
    assert res.returncode == 1
    assert "allowed: " in res.stderr and TOOL_MODEL in res.stderr


def test_a_vllm_model_is_not_allowed_for_trt() -> None:
    res = run_cli(ENGINE="trt", DEPLOY_MODE="chat", CHAT_MODEL=VLLM_MODEL, TRT_ENGINE_LABEL=LABEL)
    assert res.returncode == 1
    assert f"CHAT_MODEL '{VLLM_MODEL}' is not in the trt chat allowlist" in res.stderr


def test_unlisted_but_well_formed_passes_only_when_allowed() -> None:
    res = run_cli(DEPLOY_MODE="tool", TOOL_MODEL="my-org/private-classifier")
    assert res.returncode == 1
    res = run_cli(
        DEPLOY_MODE="tool", TOOL_MODEL="my-org/private-classifier", ALLOW_UNLISTED_MODELS="1"
    )
    assert res.returncode == 0, res.stderr
    assert (
        "⚠ TOOL_MODEL 'my-org/private-classifier' is not in the tool-model allowlist" in res.stderr
    )


def test_local_directory_by_absolute_path(tmp_path: Path) -> None:
    model = tmp_path / "my model"
    model.mkdir()
    res = run_cli(DEPLOY_MODE="tool", TOOL_MODEL=str(model))
    assert res.returncode == 0, res.stderr
    assert f"✓ TOOL_MODEL '{model}' is a local directory" in res.stderr


@pytest.mark.parametrize("value", ["{tmp}/missing", "{tmp}/../{name}/model", "{tmp}/file"])
def test_local_path_that_is_not_a_clean_existing_directory_fails(
    value: str, tmp_path: Path
) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "file").write_text("x")
    path = value.format(tmp=tmp_path, name=tmp_path.name)
    res = run_cli(DEPLOY_MODE="tool", TOOL_MODEL=path)
    assert res.returncode == 1
    assert "or an absolute path to a model directory" in res.stderr


def test_relative_directory_is_not_taken_as_local(tmp_path: Path) -> None:
    (tmp_path / "owner" / "name").mkdir(parents=True)
    (tmp_path / "sub").mkdir()
    res = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            str(SCRIPT),
            "--deploy-mode",
            "tool",
            "--tool-model",
            "../sub",
        ],
        cwd=tmp_path / "owner",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 1
    assert "is not a valid Hugging Face repo id" in res.stderr


@pytest.mark.parametrize(
    "label",
    [
        LABEL,
        "sm80_trt-llm-0.17.0_cuda12.8",
        "sm120_trt-llm-1.2.0rc5_cuda13.0",
        "sm89_trt-llm-0.16.0.post1_cuda12.6",
        "sm90a_trt-llm-1.0.0_cuda12.9.1",
    ],
)
def test_good_trt_labels(label: str) -> None:
    res = run_cli(ENGINE="trt", DEPLOY_MODE="chat", CHAT_MODEL=TRT_MODEL, TRT_ENGINE_LABEL=label)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize(
    "label",
    [
        "sm90",
        "latest",
        "sm90_trt-llm-0.17_cuda",
        "SM90_trt-llm-0.17.0_cuda12.8",
        "sm90_trt-llm-0.17.0_cuda12.8/../x",
        "sm90_trt-llm-0.17.0_cuda12.8 ",
        "sm9_trt-llm-0.17.0_cuda12.8",
        "sm90_tensorrt-0.17.0_cuda12.8",
        "sm90_trt-llm-0.17.0_cuda12.8;id",
    ],
)
def test_bad_trt_labels_show_the_format(label: str) -> None:
    res = run_cli(ENGINE="trt", DEPLOY_MODE="chat", CHAT_MODEL=TRT_MODEL, TRT_ENGINE_LABEL=label)
    assert res.returncode == 1
    assert f"✗ TRT_ENGINE_LABEL {label!r} is not valid: use sm{{arch}}_trt-llm-" in res.stderr
    assert "example: sm90_trt-llm-0.17.0_cuda12.8" in res.stderr


def test_trt_label_is_required_with_chat_only() -> None:
    res = run_cli(ENGINE="trt", DEPLOY_MODE="both", CHAT_MODEL=TRT_MODEL, TOOL_MODEL=TOOL_MODEL)
    assert res.returncode == 1
    assert "✗ TRT_ENGINE_LABEL is required with ENGINE=trt" in res.stderr
    res = run_cli(ENGINE="trt", DEPLOY_MODE="tool", TOOL_MODEL=TOOL_MODEL)
    assert res.returncode == 0, res.stderr


def test_explicit_trt_engine_repo_must_be_a_repo_id() -> None:
    res = run_cli(
        ENGINE="trt",
        DEPLOY_MODE="chat",
        CHAT_MODEL=TRT_MODEL,
        TRT_ENGINE_LABEL=LABEL,
        TRT_ENGINE_REPO="engines/x;y",
    )
    assert res.returncode == 1
    assert "✗ TRT_ENGINE_REPO 'engines/x;y' is not a valid Hugging Face repo id" in res.stderr
    res = run_cli(
        ENGINE="trt",
        DEPLOY_MODE="chat",
        CHAT_MODEL=TRT_MODEL,
        TRT_ENGINE_LABEL=LABEL,
        TRT_ENGINE_REPO="my-org/engines",
    )
    assert res.returncode == 0, res.stderr


def test_all_failures_are_reported_together() -> None:
    res = run_cli(ENGINE="trt", DEPLOY_MODE="both", CHAT_MODEL="bad id", TOOL_MODEL="also bad")
    assert res.returncode == 1
    assert res.stderr.count("✗") == 4  # chat model, engine repo, label, tool model


def test_root_dir_without_allowlists_is_one_line_without_traceback(tmp_path: Path) -> None:
    res = run_cli(DEPLOY_MODE="tool", TOOL_MODEL=TOOL_MODEL, ROOT_DIR=str(tmp_path))
    assert res.returncode == 1
    assert res.stderr == (
        f"[validate] ✗ ROOT_DIR {str(tmp_path)!r} holds no src/config/models.py; "
        "set ROOT_DIR to the repository root\n"
    )
    assert "Traceback" not in res.stderr
    res = run_cli(
        DEPLOY_MODE="tool", TOOL_MODEL=TOOL_MODEL, ROOT_DIR=str(tmp_path), LOG_LEVEL="debug"
    )
    assert "Traceback" in res.stderr


def test_root_dir_selects_the_allowlists_it_holds(tmp_path: Path) -> None:
    config = tmp_path / "src" / "config"
    config.mkdir(parents=True)
    text = (ROOT / "src" / "config" / "models.py").read_text()
    (config / "models.py").write_text(text.replace('"ProsusAI/finbert",', '"acme/only-here",'))
    assert run_cli(DEPLOY_MODE="tool", TOOL_MODEL="acme/only-here").returncode == 1
    res = run_cli("--root-dir", str(tmp_path), DEPLOY_MODE="tool", TOOL_MODEL="acme/only-here")
    assert res.returncode == 0, res.stderr


def test_default_root_is_the_repository_the_script_sits_in(tmp_path: Path) -> None:
    copy = tmp_path / "checkout"
    (copy / "docker" / "common" / "download").mkdir(parents=True)
    shutil.copy(SCRIPT, copy / "docker" / "common" / "download" / "validate.py")
    res = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            str(copy / "docker/common/download/validate.py"),
            "--deploy-mode",
            "tool",
            "--tool-model",
            TOOL_MODEL,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert res.returncode == 1
    assert f"ROOT_DIR {str(copy)!r} holds no src/config/models.py" in res.stderr


def test_a_local_chat_directory_is_for_vllm_only(tmp_path: Path) -> None:
    res = run_cli(ENGINE="vllm", DEPLOY_MODE="chat", CHAT_MODEL=str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "is a local directory" in res.stderr
    res = run_cli(ENGINE="trt", DEPLOY_MODE="chat", CHAT_MODEL=str(tmp_path),
                  TRT_ENGINE_REPO="yapwithai/qwen3-30b-trt-awq",
                  TRT_ENGINE_LABEL="sm90_trt-llm-0.17.0_cuda12.8")
    assert res.returncode == 1
    assert f"CHAT_MODEL {str(tmp_path)!r} is a local directory, which only ENGINE=vllm" \
        in res.stderr


def test_local_directory_rule_is_the_one_the_entry_points_use(tmp_path: Path) -> None:
    from pyhelpers import model_ref

    assert Path(validate.model_ref().__file__) == Path(model_ref.__file__)
    for value in (str(tmp_path), f"{tmp_path}/../{tmp_path.name}", "relative/dir", "/no/such"):
        assert validate.model_ref().is_local_dir(value) == model_ref.is_local_dir(value)
    assert validate.model_ref().is_local_dir(str(tmp_path))
    assert not validate.model_ref().is_local_dir(f"{tmp_path}/../{tmp_path.name}")


def test_list_prints_the_models_py_values_for_the_build_scripts() -> None:
    res = run_cli("--list", "engines")
    engines = validate.load_models(ROOT).CHAT_ENGINES
    assert res.returncode == 0 and res.stdout == " ".join(engines) + "\n" == "vllm trt\n"
    res = run_cli("--list", "deploy-modes")
    assert res.returncode == 0 and res.stdout == "chat tool both\n"
    assert run_cli("--list", "tags").returncode == 2
