"""src/config/bootstrap.py: the arguments settings.sh passes, and a clear usage error otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

from src.config import bootstrap

# What the call does without, each a noticeable part of a start that happens at every container
# start: Python's logging, argparse (and the shutil it loads), the build's hashing and threads.
NOT_IMPORTED = {"logging", "argparse", "shutil", "hashlib", "concurrent.futures"}


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


def imported_by(*args: str) -> set[str]:
    """The modules a `python3 -X importtime <args>` run imports, beyond Python's own start."""
    def names(*argv: str) -> set[str]:
        run = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=ROOT, text=True,
                             capture_output=True, timeout=60, check=False,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        return {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines()
                if line.startswith("import time:")}
    return names(*args) - names("-c", "pass")


def test_the_bootstrap_call_imports_nothing_it_does_without() -> None:
    found = imported_by("-m", "src.config", "--stack", "tool")
    assert "src.config.resolve" in found and "pyhelpers.manifest" in found
    assert not found & NOT_IMPORTED
    assert "logging" in imported_by("-m", "pyhelpers.log_setup")  # what the check would see
