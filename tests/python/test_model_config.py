"""pyhelpers/model_config.py: a model's quantization and an engine's facts, from their files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyhelpers.model_config import ConfigError, Engine, model_quantization, read_engine, sm_arch


def write(path: Path, data: object) -> Path:
    """Write JSON (or text, for a str) to a file, making its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("config", "expected"),
    [({"quantization_config": {"quant_method": "awq", "bits": 4}}, "awq"),
     ({"quantization_config": {"quant_method": "compressed-tensors"}}, "compressed-tensors"),
     ({"model_type": "qwen3"}, None), ({"quantization_config": None}, None),
     ({"quantization_config": {"quant_method": ""}}, None), ("{not json", None), ([1, 2], None)],
)
def test_model_quantization(tmp_path: Path, config: object, expected: str | None) -> None:
    write(tmp_path / "config.json", config)
    assert model_quantization(tmp_path) == expected


def test_no_config_json_means_no_quantization(tmp_path: Path) -> None:
    assert model_quantization(tmp_path / "missing") is None


@pytest.mark.parametrize("quant", ["awq; rm -rf /", "a\nb", 4])
def test_a_quantization_that_is_not_one_word_is_refused_shown_on_one_line(
    tmp_path: Path, quant: object
) -> None:
    write(tmp_path / "config.json", {"quantization_config": {"quant_method": quant}})
    with pytest.raises(ConfigError, match="not one word") as err:
        model_quantization(tmp_path)
    assert "\n" not in str(err.value)


def bake_engine(directory: Path, ranks: int = 1, metadata: object = None, **config: object) -> Path:
    """An engine directory as trtllm-build leaves it (rank files, config.json, metadata)."""
    for rank in range(ranks):
        write(directory / f"rank{rank}.engine", "x")
    write(directory / "config.json", config)
    if metadata is not None:
        write(directory / "build_metadata.json", metadata)
    return directory


def test_read_engine_reads_limits_tp_quant_arch_and_ranks(tmp_path: Path) -> None:
    bake_engine(tmp_path, 2, {"sm_arch": "sm_90"},
                build_config={"max_seq_len": 4096, "max_batch_size": 16, "max_num_tokens": 8192,
                              "max_input_len": 3072, "max_output_len": 0, "max_beam_width": 1},
                pretrained_config={"mapping": {"tp_size": 2},
                                   "quantization": {"quant_algo": "W4A16_AWQ"}})
    (tmp_path / "rank9.engine.incomplete").write_text("partial")
    assert read_engine(tmp_path) == Engine(
        limits={"max_seq_len": 4096, "max_batch_size": 16, "max_num_tokens": 8192,
                "max_input_len": 3072},
        tp_size=2, quant_algo="W4A16_AWQ", sm_arch="sm90", ranks=2)


def test_read_engine_leaves_out_what_the_files_do_not_say(tmp_path: Path) -> None:
    bake_engine(tmp_path, 0, {"trtllm_version": "0.17.0"},
                build_config={"max_seq_len": True, "max_batch_size": "16"},
                pretrained_config={"mapping": None, "quantization": {"quant_algo": None}})
    assert read_engine(tmp_path) == Engine()
    assert read_engine(tmp_path / "nothing here") is None


@pytest.mark.parametrize(("name", "text"), [("config.json", "{"), ("config.json", "[]"),
                                            ("build_metadata.json", "nope")])
def test_an_unreadable_engine_file_is_one_error_naming_it(
    tmp_path: Path, name: str, text: str
) -> None:
    bake_engine(tmp_path, 1, {"sm_arch": "sm90"})
    write(tmp_path / name, text)
    with pytest.raises(ConfigError, match=f"{tmp_path / name}: not a readable engine"):
        read_engine(tmp_path)


@pytest.mark.parametrize(("value", "expected"),
                         [("sm90", "sm90"), ("sm_120", "sm120"), ("89", "sm89"), (80, "sm80"),
                          ("hopper", None), ("sm9", None), ("", None), (None, None)])
def test_sm_arch_forms(value: object, expected: str | None) -> None:
    assert sm_arch(value) == expected
