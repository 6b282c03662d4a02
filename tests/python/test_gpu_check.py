"""scripts/lib/gpu_check.py: the GPU truth check's comparisons, rows and table (no GPU here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from src.config.settings import load_settings
from src.engines.chat import build_engine_argv

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gc() -> ModuleType:
    """scripts/lib/gpu_check.py, imported by path (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts/lib/gpu_check.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def rows_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty GPU_CHECK_ROWS file."""
    path = tmp_path / "rows"
    path.write_text("")
    monkeypatch.setenv("GPU_CHECK_ROWS", str(path))
    return path


def facts(gc: ModuleType, tmp_path: Path, line: str) -> object:
    """Facts read from a file holding line."""
    path = tmp_path / "facts"
    path.write_text(line + "\n")
    return gc.Facts.read(path)


H200 = "NVML\tNVIDIA H200\tsm90\t140\t1\tyes"
H200_SMI = H200.replace("NVML", "nvidia-smi", 1)
TWO_SMI = "nvidia-smi\tNVIDIA H200\tsm90\t140\t2\tyes"


def test_facts_read_a_gpu_no_gpu_and_garbage(gc: ModuleType, tmp_path: Path) -> None:
    f = facts(gc, tmp_path, H200)
    assert f == gc.Facts("NVML", "NVIDIA H200", "sm90", 140, 1, "yes")
    assert f.describe() == "NVIDIA H200: sm90, 140 GiB, 1 GPU(s), FP8 yes (from NVML)"
    none = facts(gc, tmp_path, "none\tnvidia-smi: not installed")
    assert (none.source, none.count, none.describe()) == (
        "none", 0, "no GPU found (nvidia-smi: not installed)")
    with pytest.raises(gc.CheckError, match="not a facts line"):
        facts(gc, tmp_path, "NVML\tNVIDIA H200\tsm90\tlots\t1\tyes")


@pytest.mark.parametrize(("nvml", "smi", "env", "want"), [
    (H200, H200_SMI, {}, (True, True)),
    # NVML failed and detection fell back to nvidia-smi: the first row fails
    (H200_SMI, H200_SMI, {}, (False, True)),
    # nvidia-smi sees another memory size, or answers not at all
    (H200, "nvidia-smi\tNVIDIA H200\tsm90\t141\t1\tyes", {}, (True, False)),
    (H200, "none\tnvidia-smi: not installed", {}, (True, False)),
    # nvidia-smi lists every GPU; NVML only the visible ones
    (H200, TWO_SMI, {}, (True, False)),
    (H200, TWO_SMI, {"CUDA_VISIBLE_DEVICES": "0"}, (True, True)),
    # no architecture from NVML: not a pass
    ("NVML\tNVIDIA X\t\t16\t1\tno", "nvidia-smi\tNVIDIA X\t\t16\t1\tno", {}, (False, True)),
])
def test_detect_rows(gc: ModuleType, tmp_path: Path, nvml: str, smi: str,
                     env: dict[str, str], want: tuple[bool, bool]) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    rows = gc.detect_rows(facts(gc, tmp_path / "a", nvml), facts(gc, tmp_path / "b", smi), env)
    assert [r.check for r in rows] == ["detection, NVML first", "detection, NVML hidden"]
    assert (rows[0].ok, rows[1].ok) == want


EXPLAIN = """\
KV_DTYPE                     {kv:<44} ({kv_src})
MAX_NUM_SEQS                 256                                          (gpu preset)
MAX_NUM_BATCHED_TOKENS       16384                                        (gpu preset)
CHAT_QUANTIZATION            <unset>                                      (unset)
GPU_SM_ARCH                  sm90                                         (gpu preset)
DETECTED_GPU_NAME            NVIDIA H200                                  (gpu preset)
TORCH_CUDA_ARCH_LIST         9.0                                          (gpu preset)
GPU_SM                       {sm:<44} ({sm_src})
"""


def explain(kv: str = "fp8", kv_src: str = "gpu preset", sm: str = "sm90",
            sm_src: str = "gpu preset") -> str:
    """--explain output in settings_explain's format."""
    return EXPLAIN.format(kv=kv, kv_src=kv_src, sm=sm, sm_src=sm_src)


def test_parse_explain_keeps_values_with_blanks_and_sources(gc: ModuleType) -> None:
    parsed = gc.parse_explain(explain())
    assert parsed["DETECTED_GPU_NAME"] == ("NVIDIA H200", "gpu preset")
    assert parsed["CHAT_QUANTIZATION"] == ("<unset>", "unset")
    assert gc.parse_explain("[vllm] ✓ ready to start\n") == {}


def test_preset_rows(gc: ModuleType) -> None:
    assert gc.preset_rows("vllm", gc.parse_explain(explain()))[0].ok
    user = gc.preset_rows("vllm", gc.parse_explain(explain(kv="auto", kv_src="user")))[0]
    assert (user.ok, user.seen) == (False, "not from it: KV_DTYPE (user)")
    trt = gc.preset_rows("trt", gc.parse_explain(explain()))[0]
    assert (trt.ok, trt.seen) == (True, "all 3 from it; GPU_SM sm90, GPU_SM_ARCH sm90")
    # a GPU_SM the user set to another architecture: not this GPU's preset
    wrong = gc.preset_rows("trt", gc.parse_explain(explain(sm="sm89", sm_src="user")))[0]
    assert not wrong.ok
    assert wrong.seen == "not from it: GPU_SM (user); GPU_SM sm89, GPU_SM_ARCH sm90"


BOOTSTRAPPED = {"DEPLOY_MODE": "both", "TEXT_API_KEY": "k", "CHAT_GPU_FRAC": "0.70",
                "TOOL_GPU_FRAC": "0.20", "KV_DTYPE": "fp8", "MAX_NUM_SEQS": "256",
                "MAX_NUM_BATCHED_TOKENS": "16384", "TENSOR_PARALLEL_SIZE": "1",
                "TRT_KV_FREE_GPU_FRAC": "0.70"}


@pytest.mark.parametrize("engine", ["vllm", "trt"])
def test_argv_rows_against_the_real_build_engine_argv(gc: ModuleType, engine: str) -> None:
    env = {**BOOTSTRAPPED, "ENGINE": engine}
    argv = build_engine_argv(load_settings(env))
    row = gc.argv_rows(engine, argv, env)[0]
    assert (row.ok, row.seen) == (True, "all as set")  # 0.7 in argv is CHAT_GPU_FRAC=0.70
    other = gc.argv_rows(engine, argv, {**env, "TENSOR_PARALLEL_SIZE": "2"})[0]
    assert not other.ok
    flag = {"vllm": "--tensor-parallel-size", "trt": "--tp_size"}[engine]
    assert other.seen == f"{flag} 1 (want TENSOR_PARALLEL_SIZE=2)"


def test_argv_rows_a_flag_missing_from_argv(gc: ModuleType) -> None:
    argv = build_engine_argv(load_settings({k: v for k, v in BOOTSTRAPPED.items()
                                            if k != "KV_DTYPE"}))
    row = gc.argv_rows("vllm", argv, BOOTSTRAPPED)[0]
    assert (row.ok, row.seen) == (False, "--kv-cache-dtype None (want KV_DTYPE=fp8)")


def test_rows_round_trip_and_the_table(gc: ModuleType, rows_file: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    gc.record(gc.Row("a\tcheck", "line\nbreak", "x | y", True), gc.Row("b", "e", "s", False))
    assert rows_file.read_text() == "a check\tline break\tx | y\tpass\nb\te\ts\tfail\n"
    rows = gc.read_rows(rows_file)
    assert [r.ok for r in rows] == [True, False]
    assert gc.main(["table"]) == 1
    out = capsys.readouterr().out
    assert "| a check | line break | x \\| y | pass |" in out.splitlines()
    assert "| b | e | s | **FAIL** |" in out.splitlines()
    assert out.endswith("\n1 of 2 checks passed\n")
    rows_file.write_text("b\te\ts\tpass\n")
    assert gc.main(["table"]) == 0
    assert capsys.readouterr().out.endswith("\n1 of 1 checks passed\n")


def test_table_without_rows_or_with_garbage_fails(gc: ModuleType, rows_file: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert gc.main(["table"]) == 1
    assert capsys.readouterr().out.endswith("no check ran\n")
    rows_file.write_text("only\ttwo\n")
    assert gc.main(["table"]) == 1
    assert capsys.readouterr().err.startswith("[gpu-check] ✗ table: ")


def test_row_step_and_a_missing_rows_file(gc: ModuleType, rows_file: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert gc.main(["row", "step 'x'", "runs", "status 2", "fail"]) == 0
    assert rows_file.read_text() == "step 'x'\truns\tstatus 2\tfail\n"
    monkeypatch.delenv("GPU_CHECK_ROWS")
    assert gc.main(["row", "c", "e", "s", "pass"]) == 1
    assert capsys.readouterr().err == (
        "[gpu-check] ✗ row: GPU_CHECK_ROWS is not set; run the steps through "
        "scripts/gpu_check.sh\n")


def test_cuda_step_on_cpu_torch_is_one_failed_row(gc: ModuleType, rows_file: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert gc.main(["cuda"]) == 0
    rows = gc.read_rows(rows_file)
    assert [(r.check, r.ok) for r in rows] == [("torch sees the GPU", False)]
    assert rows[0].seen.startswith("no CUDA device (torch ")
    assert "the tool model was not loaded" in capsys.readouterr().out
