"""docker/common/download/validate.py: every rule, through the real CLI and its functions."""

from __future__ import annotations

import ast
import importlib.util
import os
import random
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
    "CHAT_MODEL_REVISION",
    "TOOL_MODEL_REVISION",
    "TRT_ENGINE_REVISION",
    "HF_ENDPOINT",
    "BASE_IMAGE",
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
    "owner/" + "m" * 97,
    "o" * 97 + "/model",
    "owner/model.git",
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
rules = validate.pyhelper("value_rules")


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
    problem = rules.repo_id_problem(bad)
    assert problem is not None, bad
    result = validate.check_model(
        "CHAT_MODEL", bad, ("Qwen/Qwen3-8B-AWQ",), "vllm chat allowlist", allow_unlisted=True,
        kind="chat",
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


def hub_accepts(value: str) -> bool:
    """huggingface_hub's own verdict on a repo id."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(value)
    except HFValidationError:
        return False
    return True


def test_repo_ids_follow_huggingface_hubs_validate_repo_id() -> None:
    rng = random.Random(15)  # noqa: S311 (a fixed seed: the same corpus every run)
    alphabet = "aZ09_-.\u00e9\u0669\uff19 /"
    values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9))) for _ in range(4000)]
    values += ["o/" + "m" * 96, "o/" + "m" * 97, "o" * 96 + "/m", "o" * 97 + "/m", "owner/name.git",
               "owner/name.gi", "owner.git/name", "a/b", "a_/_b", "a-b/c.d"]
    checked = 0
    for value in values:
        ours = rules.repo_id_problem(value) is None
        if value.count("/") == 1:
            assert ours == hub_accepts(value), value
            checked += 1
        else:
            assert not ours, f"{value!r}: a repo id needs its owner"
    assert checked > 500
    assert rules.repo_id_problem("o/" + "m" * 97) == (
        "is not a valid Hugging Face repo id (its name is 97 characters long)")


def test_a_repo_id_ending_in_git_is_refused_with_the_reason() -> None:
    res = run_cli(DEPLOY_MODE="tool", TOOL_MODEL="my-org/classifier.git", ALLOW_UNLISTED_MODELS="1")
    assert res.returncode == 1
    assert ("✗ TOOL_MODEL 'my-org/classifier.git' is not a valid Hugging Face repo id (the Hub "
            "refuses a name ending in '.git')") in res.stderr


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


def model_dir(parent: Path, *files: str) -> Path:
    """A local model directory (its path holds a space) with the named files."""
    model = parent / "my model"
    model.mkdir()
    for name in files:
        (model / name).write_text("{}")
    return model


def test_local_directory_by_absolute_path(tmp_path: Path) -> None:
    model = model_dir(tmp_path, "config.json", "model.safetensors")
    res = run_cli(DEPLOY_MODE="tool", TOOL_MODEL=str(model))
    assert res.returncode == 0, res.stderr
    assert f"✓ TOOL_MODEL '{model}' is a local tool model directory" in res.stderr


@pytest.mark.parametrize(("value", "problem"), [
    ("{tmp}/missing", "does not exist"),
    ("{tmp}/../{name}/model", "holds '..'"),
    ("{tmp}/file", "is not a directory"),
])
def test_local_path_that_is_not_a_clean_existing_directory_says_why(
    value: str, problem: str, tmp_path: Path
) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "file").write_text("x")
    path = value.format(tmp=tmp_path, name=tmp_path.name)
    res = run_cli(DEPLOY_MODE="tool", TOOL_MODEL=path)
    assert res.returncode == 1
    assert f"✗ TOOL_MODEL {path!r} {problem}: give an existing model directory" in res.stderr
    assert "not a valid Hugging Face repo id" not in res.stderr


@pytest.mark.parametrize(("files", "kind", "missing"), [
    ((), "tool", "holds no config.json, no *.safetensors|pytorch_model.bin"),
    (("config.json",), "tool", "holds no *.safetensors|pytorch_model.bin"),
    (("config.json", "model.safetensors"), "chat",
     "holds no tokenizer.json|tokenizer.model|vocab.json|vocab.txt"),
])
def test_local_directory_without_what_the_bake_requires_fails_on_the_host(
    tmp_path: Path, files: tuple[str, ...], kind: str, missing: str
) -> None:
    model = model_dir(tmp_path, *files)
    var = "TOOL_MODEL" if kind == "tool" else "CHAT_MODEL"
    res = run_cli(ENGINE="vllm", DEPLOY_MODE=kind, **{var: str(model)})
    assert res.returncode == 1
    assert f"✗ {var} {str(model)!r} {missing} (a {kind} model needs" in res.stderr


def test_local_directory_whose_config_is_not_json_fails(tmp_path: Path) -> None:
    model = model_dir(tmp_path, "model.safetensors")
    (model / "config.json").write_text("[1, 2")
    res = run_cli(DEPLOY_MODE="tool", TOOL_MODEL=str(model))
    assert res.returncode == 1
    assert "has a config.json that is not readable JSON" in res.stderr


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


def test_the_downloaded_trt_engine_repo_passes_the_chat_allowlist() -> None:
    res = run_cli(ENGINE="trt", DEPLOY_MODE="chat", CHAT_MODEL=TRT_MODEL, TRT_ENGINE_LABEL=LABEL,
                  TRT_ENGINE_REPO="anyone/anything")
    assert res.returncode == 1
    assert f"✓ CHAT_MODEL '{TRT_MODEL}' is allowlisted" in res.stderr
    assert "✗ TRT_ENGINE_REPO 'anyone/anything' is not in the trt chat allowlist" in res.stderr
    res = run_cli(ENGINE="trt", DEPLOY_MODE="chat", CHAT_MODEL=TRT_MODEL, TRT_ENGINE_LABEL=LABEL,
                  TRT_ENGINE_REPO="my-org/engines", ALLOW_UNLISTED_MODELS="1")
    assert res.returncode == 0, res.stderr
    assert ("⚠ TRT_ENGINE_REPO 'my-org/engines' is not in the trt chat allowlist; accepted "
            "(ALLOW_UNLISTED_MODELS=1)") in res.stderr
    res = run_cli(ENGINE="trt", DEPLOY_MODE="chat", CHAT_MODEL=TRT_MODEL, TRT_ENGINE_LABEL=LABEL,
                  TRT_ENGINE_REPO=TRT_MODEL)
    assert res.returncode == 0, res.stderr
    assert f"✓ TRT_ENGINE_REPO '{TRT_MODEL}' is allowlisted (trt chat allowlist)" in res.stderr


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
    model = model_dir(tmp_path, "config.json", "tokenizer.json", "model.safetensors")
    res = run_cli(ENGINE="vllm", DEPLOY_MODE="chat", CHAT_MODEL=str(model))
    assert res.returncode == 0, res.stderr
    assert "is a local chat model directory" in res.stderr
    res = run_cli(ENGINE="trt", DEPLOY_MODE="chat", CHAT_MODEL=str(tmp_path),
                  TRT_ENGINE_REPO="yapwithai/qwen3-30b-trt-awq",
                  TRT_ENGINE_LABEL="sm90_trt-llm-0.17.0_cuda12.8")
    assert res.returncode == 1
    assert f"CHAT_MODEL {str(tmp_path)!r} is a local path, which only ENGINE=vllm" \
        in res.stderr


def test_local_directory_rule_is_the_one_the_entry_points_use(tmp_path: Path) -> None:
    from pyhelpers import model_ref

    ref = validate.pyhelper("model_ref")
    assert Path(ref.__file__) == Path(model_ref.__file__)
    for value in (str(tmp_path), f"{tmp_path}/../{tmp_path.name}", "relative/dir", "/no/such"):
        assert ref.is_local_dir(value) == model_ref.is_local_dir(value)
    assert ref.is_local_dir(str(tmp_path))
    assert not ref.is_local_dir(f"{tmp_path}/../{tmp_path.name}")


def test_list_prints_the_models_py_values_for_the_build_scripts() -> None:
    res = run_cli("--list", "engines")
    engines = validate.load_models(ROOT).CHAT_ENGINES
    assert res.returncode == 0 and res.stdout == " ".join(engines) + "\n" == "vllm trt\n"
    res = run_cli("--list", "deploy-modes")
    assert res.returncode == 0 and res.stdout == "chat tool both\n"
    assert run_cli("--list", "tags").returncode == 2


# Arabic-Indic and fullwidth digits: '\d' without re.ASCII takes them
@pytest.mark.parametrize("label", ["sm\u0669\u0660_trt-llm-0.17.0_cuda12.8",
                                   "sm\uff19\uff10_trt-llm-0.17.0_cuda12.8",
                                   "sm90_trt-llm-\uff10.17.0_cuda12.8",
                                   "sm90_trt-llm-0.17.0_cuda\u0661\u0662.8"])
def test_trt_labels_with_digits_of_other_scripts_are_refused(label: str) -> None:
    res = run_cli(ENGINE="trt", DEPLOY_MODE="chat", CHAT_MODEL=TRT_MODEL, TRT_ENGINE_LABEL=label)
    assert res.returncode == 1
    assert f"✗ TRT_ENGINE_LABEL {label!r} is not valid" in res.stderr


def regex_calls_without_ascii(path: Path) -> list[str]:
    """The re.compile/match/… calls of a file that do not pass re.ASCII among their flags."""
    functions = {"compile", "match", "fullmatch", "search", "findall", "finditer", "sub", "split"}
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                and node.func.attr in functions
                and "re.ASCII" not in ast.unparse(node)):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_regex_of_the_build_rules_is_ascii_only() -> None:
    files = sorted([*(ROOT / "pyhelpers").glob("*.py"),
                    *(ROOT / "docker/common/download").glob("*.py")])
    assert any("re.compile" in f.read_text() for f in files), "the scan must see the patterns"
    assert [hit for f in files for hit in regex_calls_without_ascii(f)] == []


REVISION_OK = ["main", "v1.0", "refs/pr/3", "0123456789abcdef0123456789abcdef01234567", "rel_2+b"]
REVISION_BAD = ["$(id)", "main\nTAG=x", "a..b", "../main", "-x", "a b", "v1.lock", "dev/", "a//b",
                "mäin", "x" * 201]


@pytest.mark.parametrize("value", REVISION_OK)
def test_good_revisions_pass(value: str) -> None:
    res = run_cli(ENGINE="vllm", DEPLOY_MODE="both", CHAT_MODEL=VLLM_MODEL, TOOL_MODEL=TOOL_MODEL,
                  CHAT_MODEL_REVISION=value, TOOL_MODEL_REVISION=value)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("value", REVISION_BAD)
@pytest.mark.parametrize(("var", "env"), [
    ("CHAT_MODEL_REVISION", {"ENGINE": "vllm", "DEPLOY_MODE": "chat", "CHAT_MODEL": VLLM_MODEL}),
    ("TOOL_MODEL_REVISION", {"DEPLOY_MODE": "tool", "TOOL_MODEL": TOOL_MODEL}),
    ("TRT_ENGINE_REVISION", {"ENGINE": "trt", "DEPLOY_MODE": "chat", "CHAT_MODEL": TRT_MODEL,
                             "TRT_ENGINE_LABEL": LABEL}),
])
def test_bad_revisions_are_one_line_naming_the_variable(
    value: str, var: str, env: dict[str, str]
) -> None:
    res = run_cli(**env, **{var: value})
    assert res.returncode == 1
    errors = [line for line in res.stderr.splitlines() if "✗" in line]
    assert errors == [f"[validate] ✗ {var} {value!r} is not a branch, tag or commit name: "
                      f"{rules.REVISION_HELP}"]


def test_a_revision_of_a_model_not_built_is_not_checked() -> None:
    res = run_cli(DEPLOY_MODE="tool", TOOL_MODEL=TOOL_MODEL, CHAT_MODEL_REVISION="$(id)")
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("value", ["https://huggingface.co", "http://127.0.0.1:9",
                                   "https://hub-mirror.internal:8080/hf/", "http://[::1]:5000"])
def test_good_endpoints_pass(value: str) -> None:
    assert run_cli(DEPLOY_MODE="tool", TOOL_MODEL=TOOL_MODEL, HF_ENDPOINT=value).returncode == 0


@pytest.mark.parametrize("value", ["not a url", "huggingface.co", "ftp://mirror", "https://",
                                   "https://$(id)/", "https://user:pw@mirror", "https://m/?q=1",
                                   "https://m:99999", "https://m\nx", "https://mirrör.example"])
def test_bad_endpoints_are_refused(value: str) -> None:
    res = run_cli(DEPLOY_MODE="tool", TOOL_MODEL=TOOL_MODEL, HF_ENDPOINT=value)
    assert res.returncode == 1
    assert f"✗ HF_ENDPOINT {value!r} is not an http(s) URL: use an http(s) URL" in res.stderr
    assert len(res.stderr.splitlines()) == 3  # mode, tool model, the error


@pytest.mark.parametrize("value", ["nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04",
                                   "tid-base:bookworm", "localhost:5000/team/base:1",
                                   "registry.example:443/a/b",
                                   "debian@sha256:" + "a" * 64, "ghcr.io/o/i:v1@sha256:" + "0" * 64,
                                   "a__b/c-d--e.f"])
def test_good_base_images_pass(value: str) -> None:
    res = run_cli(DEPLOY_MODE="tool", TOOL_MODEL=TOOL_MODEL, BASE_IMAGE=value)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("value", ["$(id)", "Debian:12", "debian:12 ", "debian\n", "-x", "a//b",
                                   "debian:", "debian@sha256:abc", "a/b:" + "t" * 129, "débian",
                                   "a/" + "b" * 255])
def test_bad_base_images_are_refused(value: str) -> None:
    res = run_cli(DEPLOY_MODE="tool", TOOL_MODEL=TOOL_MODEL, BASE_IMAGE=value)
    assert res.returncode == 1
    errors = [line for line in res.stderr.splitlines() if "✗" in line]
    assert len(errors) == 1 and errors[0].startswith(f"[validate] ✗ BASE_IMAGE {value!r} ")
    assert errors[0].endswith(rules.IMAGE_REF_HELP)
