"""src/config/models.py: the allowlists, the single source of truth."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pyhelpers.value_rules import repo_id_problem
from src.config import models

ROOT = Path(__file__).resolve().parents[2]
ALL_LISTS = {
    "VLLM_CHAT_MODELS": models.VLLM_CHAT_MODELS,
    "TRT_CHAT_MODELS": models.TRT_CHAT_MODELS,
    "TOOL_MODELS": models.TOOL_MODELS,
}


@pytest.mark.parametrize("name", sorted(ALL_LISTS))
def test_each_list_is_a_non_empty_tuple_of_unique_valid_repo_ids(name: str) -> None:
    ids = ALL_LISTS[name]
    assert isinstance(ids, tuple) and ids
    assert len(set(ids)) == len(ids), f"{name} has duplicates"
    assert [i for i in ids if repo_id_problem(i)] == []  # validate.py's rule


def test_vllm_list_holds_a_dozen_pre_quantized_repos() -> None:
    assert len(models.VLLM_CHAT_MODELS) >= 12
    marker = re.compile(r"(awq|gptq|fp8|w4a16|int4)", re.IGNORECASE)
    assert [m for m in models.VLLM_CHAT_MODELS if not marker.search(m)] == []


def test_chat_and_tool_lists_do_not_overlap() -> None:
    chat = set(models.VLLM_CHAT_MODELS) | set(models.TRT_CHAT_MODELS)
    assert chat.isdisjoint(models.TOOL_MODELS)
    assert set(models.VLLM_CHAT_MODELS).isdisjoint(models.TRT_CHAT_MODELS)


def test_chat_models_for_engine_returns_the_engine_list() -> None:
    assert models.chat_models_for_engine("vllm") is models.VLLM_CHAT_MODELS
    assert models.chat_models_for_engine("trt") is models.TRT_CHAT_MODELS


@pytest.mark.parametrize("engine", ["", "tool", "VLLM", "tensorrt"])
def test_unknown_engine_raises_naming_it(engine: str) -> None:
    with pytest.raises(ValueError, match=rf"unknown chat engine {engine!r}; valid: vllm, trt"):
        models.chat_models_for_engine(engine)


def test_no_other_file_holds_a_copy_of_the_lists() -> None:
    """Examples may name a few models; more than three ids of one list in a file is a copy."""
    own = ROOT / "src" / "config" / "models.py"
    skip_dirs = {".git", ".venv", ".cache", "node_modules", "__pycache__", "tests"}
    offenders = []
    files = []
    # os.walk prunes the skipped trees instead of walking them: .cache holds a Docker engine's
    # data root, large and changing while an e2e suite runs
    for top, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip_dirs]
        files += [Path(top, n) for n in names]
    for path in files:
        if path == own or path.suffix not in (".py", ".sh", ".json", ".yaml", ".yml", ".toml",
                                              ".txt"):
            continue
        text = path.read_text(errors="replace")
        for name, ids in ALL_LISTS.items():
            found = [i for i in ids if i in text]
            if len(found) > 3:
                offenders.append(f"{path.relative_to(ROOT)} copies {name}: {found}")
    assert offenders == []
