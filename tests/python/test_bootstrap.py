"""src/config/bootstrap.py: the arguments settings.sh passes, and a clear usage error otherwise."""

from __future__ import annotations

import pytest

from src.config import bootstrap


@pytest.mark.parametrize(("argv", "parsed"), [
    (["--stack", "tool"], ("tool", False, False, {})),
    (["--stack", "vllm", "--download"], ("vllm", True, False, {})),
    (["--stack", "trt", "--explain", "--source", "PORT=default", "--source", "A=gpu preset=x"],
     ("trt", False, True, {"PORT": "default", "A": "gpu preset=x"})),
])
def test_the_arguments_settings_sh_passes(argv: list[str], parsed: tuple) -> None:
    assert bootstrap.parse_args(argv) == parsed


@pytest.mark.parametrize(("argv", "message"), [
    ([], "--stack '' is not one of vllm, trt, tool"),
    (["--stack", "gpu"], "--stack 'gpu' is not one of vllm, trt, tool"),
    (["--stack"], "--stack needs a value"),
    (["--stack", "tool", "--source", "PORT"], "--source 'PORT' is not NAME=SOURCE"),
    (["--stack", "tool", "--source", "=x"], "--source '=x' is not NAME=SOURCE"),
    (["--stack", "tool", "--verbose"], "unknown argument '--verbose'"),
])
def test_a_wrong_argument_is_the_usage_and_status_2_resolving_nothing(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "resolve", lambda *_: pytest.fail("resolved"))
    assert bootstrap.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage:\n    python3 -m src.config --stack STACK [--download]\n")
    assert err.endswith(f"\npython3 -m src.config: {message}\n")


def test_help_prints_the_usage_and_resolves_nothing(capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "resolve", lambda *_: pytest.fail("resolved"))
    assert bootstrap.main(["--stack", "tool", "--help"]) == 0
    assert "python3 -m src.config --stack STACK --explain" in capsys.readouterr().out
