"""src/config/explain.py: main.sh --explain's table, its sources and its secrets."""

from __future__ import annotations

from pathlib import Path

from src.config.explain import STACK_SETTINGS, explain


def line_of(table: str, name: str) -> str:
    """The table's line for a variable, its padding collapsed."""
    (line,) = [x for x in table.splitlines() if x.startswith(f"{name} ")]
    return " ".join(line.split())


def test_sources_given_image_user_and_unset(tmp_path: Path) -> None:
    (tmp_path / "image.env").write_text("DEPLOY_MODE=both\nTOOL_MODEL=org/tool\n")
    env = {"APP_ROOT": str(tmp_path), "DEPLOY_MODE": "both", "TOOL_MODEL": "org/mine",
           "KV_DTYPE": "fp8", "WARMUP_MAX_WAIT": "600"}
    table = explain(env, "vllm", {"KV_DTYPE": "gpu preset", "WARMUP_MAX_WAIT": "default"})
    assert line_of(table, "DEPLOY_MODE") == "DEPLOY_MODE both (image)"
    assert line_of(table, "TOOL_MODEL") == "TOOL_MODEL org/mine (user)"
    assert line_of(table, "KV_DTYPE") == "KV_DTYPE fp8 (gpu preset)"
    assert line_of(table, "WARMUP_MAX_WAIT") == "WARMUP_MAX_WAIT 600 (default)"
    assert line_of(table, "CHAT_DTYPE") == "CHAT_DTYPE <unset> (unset)"
    assert len(table.splitlines()) == len(STACK_SETTINGS["vllm"])


def test_secrets_print_as_stars_numbers_do_not() -> None:
    env = {"TEXT_API_KEY": "sk-do-not-show", "TEXT_API_KEY_FILE": "/run/key",
           "MAX_NUM_BATCHED_TOKENS": "8192"}
    table = explain(env, "trt", {})
    assert "sk-do-not-show" not in table and "/run/key" not in table
    assert line_of(table, "TEXT_API_KEY") == "TEXT_API_KEY *** (user)"
    assert line_of(table, "MAX_NUM_BATCHED_TOKENS") == "MAX_NUM_BATCHED_TOKENS 8192 (user)"


def test_each_stack_lists_every_timer_once() -> None:
    for names in STACK_SETTINGS.values():
        assert len(names) == len(set(names))
        assert {"WARMUP_MAX_WAIT", "SHUTDOWN_GRACE_S", "ENGINE_STOP_TIMEOUT",
                "SERVER_STOP_TIMEOUT"} <= set(names)
