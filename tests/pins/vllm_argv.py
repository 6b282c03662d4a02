"""Parse the chat engine argv the app builds with the parser of the installed `vllm serve`.

Usage: PYTHONPATH=<repository> python tests/pins/vllm_argv.py CASE.env...

Each CASE.env is the environment the vllm stack's bootstrap handed the server (`env` output,
as the stack suites' stub uvicorn records it). For each case the app's Settings are loaded
from it, and the argv build_engine_argv makes is parsed by vLLM's own CLI parser with the
`serve` subcommand, built as vLLM's `vllm` command builds it, then checked by the command's
own validation; no server starts. Abbreviations are refused: vLLM's parser takes any
unambiguous prefix of an option (`--max-num-seq` for `--max-num-seqs`), so a misspelt flag
that happens to be a prefix would pass today and break when a later vLLM adds a longer option.

An optional CASE.edits beside a case holds OLD=NEW lines: argv words to replace before the
parse (how the suite proves that a misspelt flag or a bad value fails).

Prints per case "NAME: argv ..." and "NAME: ok", then one "NAME: dest=value" line for each
option of vLLM that the argv set to something other than its default; or "NAME: ✗ message".
Exits 1 when any case failed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import enum
import io
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

from vllm.entrypoints.cli.serve import ServeSubcommand
from vllm.utils.argparse_utils import FlexibleArgumentParser

from src.config.settings import SettingsError, load_settings
from src.engines.chat import build_engine_argv

_ENV_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


class CheckError(ValueError):
    """The argv of a case is not what `vllm serve` accepts."""


class ServeParser:
    """The `vllm` parser with its `serve` subcommand, abbreviations off."""

    def __init__(self) -> None:
        """Build the parsers as vLLM's CLI main does."""
        self.parser = FlexibleArgumentParser(prog="vllm")
        subparsers = self.parser.add_subparsers(dest="subparser")
        self.command = ServeSubcommand()
        serve = self.command.subparser_init(subparsers)
        self.parser.allow_abbrev = serve.allow_abbrev = False

    def parse(self, words: list[str]) -> argparse.Namespace:
        """The namespace `vllm WORDS` gets; CheckError with the parser's message otherwise."""
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                args = self.parser.parse_args(words)
                self.command.validate(args)
        except SystemExit:
            message = err.getvalue().split("error: ", 1)[-1]
            raise CheckError(" ".join(message.split())) from None
        except (ValueError, TypeError) as exc:  # vLLM's own checks raise these
            raise CheckError(" ".join(str(exc).split())) from None
        return args


def read_env(path: Path) -> dict[str, str]:
    """NAME=value lines of an `env` dump (continuation lines of multi-line values ignored)."""
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _ENV_LINE.match(line)
        if match:
            env[match[1]] = match[2]
    return env


def apply_edits(argv: list[str], edits: Path) -> list[str]:
    """argv with each OLD=NEW line of the edits file (when there is one) applied."""
    if not edits.exists():
        return argv
    for line in edits.read_text(encoding="utf-8").splitlines():
        old, new = line.split("=", 1)
        if old not in argv:
            raise CheckError(f"edit {line!r}: no word {old!r} in the argv")
        argv = [new if word == old else word for word in argv]
    return argv


def _show(value: object) -> str:
    """A parsed value as one word: enums by name, lists joined with commas."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, list | tuple):
        return ",".join(_show(v) for v in value)
    return str(value)


def _changes(name: str, new: object, old: object) -> Iterator[str]:
    """name=value for a value that differs from its default, field by field in config objects."""
    if new == old:
        return
    if dataclasses.is_dataclass(new) and type(new) is type(old):
        for f in dataclasses.fields(new):
            yield from _changes(f"{name}.{f.name}", getattr(new, f.name), getattr(old, f.name))
    else:
        yield f"{name}={_show(new)}"


def check(parser: ServeParser, argv: list[str]) -> list[str]:
    """The options argv sets (dest=value, sorted); CheckError when vLLM does not accept it."""
    if argv[:2] != ["vllm", "serve"]:
        raise CheckError(f"the argv starts with {shlex.join(argv[:2])!r}, not 'vllm serve'")
    args, defaults = vars(parser.parse(argv[1:])), vars(parser.parse(["serve"]))
    return sorted(line for dest in args for line in _changes(dest, args[dest], defaults.get(dest)))


def main(paths: list[str]) -> int:
    """Check every case; print what each got; 1 when any failed."""
    parser, failed = ServeParser(), 0
    for path in map(Path, paths):
        name = path.stem
        try:
            argv = apply_edits(build_engine_argv(load_settings(read_env(path))),
                               path.with_suffix(".edits"))
            print(f"{name}: argv {shlex.join(argv)}")
            lines = check(parser, argv)
        except (SettingsError, CheckError) as exc:
            print(f"{name}: ✗ {exc}")
            failed += 1
            continue
        print(f"{name}: ok")
        print("".join(f"{name}: {line}\n" for line in lines), end="")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
