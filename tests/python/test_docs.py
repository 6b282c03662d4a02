"""The READMEs name only what exists: every *.sh/*.py path and every function in backticks."""

from __future__ import annotations

import fnmatch
import itertools
import os
import re
from functools import cache
from pathlib import Path

import pytest
from conftest import ROOT

SKIP_DIRS = {".git", ".venv", ".cache", "__pycache__", ".pytest_cache", ".ruff_cache"}
FENCE_RE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
SPAN_RE = re.compile(r"`([^`\n]+)`")
PATH_RE = re.compile(r"(?<![\w./<>*{}$-])([\w./<>*{},$-]*\.(?:sh|py))(?![\w.])", re.ASCII)
# the project's own top-level modules: a call through any other (huggingface_hub.…) is not ours
PROJECT_MODULES = ("pyhelpers", "src", "hub_mirror", "model_ref", "tiny_model")
IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
SHELL_DEF_RE = re.compile(r"^\s*(?:function\s+)?([A-Za-z_]\w*)\s*\(\)\s*\{",
                          re.MULTILINE | re.ASCII)
PY_DEF_RE = re.compile(r"^\s*(?:async\s+def|def|class)\s+([A-Za-z_]\w*)", re.MULTILINE | re.ASCII)


@cache
def repo_files() -> tuple[Path, ...]:
    """Every file of the working tree, without caches, virtual environments and git."""
    found = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        found.extend(Path(dirpath) / name for name in filenames)
    return tuple(sorted(found))


@cache
def relative_paths() -> tuple[str, ...]:
    """The working tree's files as POSIX paths relative to the repository."""
    return tuple(p.relative_to(ROOT).as_posix() for p in repo_files())


@cache
def code_texts() -> tuple[str, ...]:
    """The text of every source file that is not a README."""
    texts = []
    for path in repo_files():
        if path.name == "README.md" or path.stat().st_size > 1_000_000:
            continue
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            continue  # a binary fixture: no code in it
    return tuple(texts)


@cache
def defined_functions() -> frozenset[str]:
    """Shell functions, Python functions and classes defined anywhere in the tree."""
    names: set[str] = set()
    for text in code_texts():
        names.update(SHELL_DEF_RE.findall(text))
        names.update(PY_DEF_RE.findall(text))
    return frozenset(names)


@cache
def code_words() -> frozenset[str]:
    """Every identifier written anywhere in the source files."""
    return frozenset(word for text in code_texts() for word in IDENT_RE.findall(text))


def readmes() -> list[Path]:
    """The README.md files of the repository."""
    return [p for p in repo_files() if p.name == "README.md"]


def expand_braces(token: str) -> list[str]:
    """Shell brace expansion of one level: build/{a,b}.sh → build/a.sh, build/b.sh."""
    match = re.search(r"\{([^{}]*)\}", token)
    if match is None:
        return [token]
    head, tail = token[:match.start()], token[match.end():]
    return list(itertools.chain.from_iterable(
        expand_braces(head + part + tail) for part in match.group(1).split(",")))


def path_exists(token: str) -> bool:
    """Whether a path written in a README names a file of the tree.

    Paths are written from the repository root, from the README's folder, from the image's
    /app or /build, or as a bare file name: any tracked file ending in the path counts.
    <placeholders>, $VARIABLES and * match anything; a leading ROOT_DIR/ or ${APP_ROOT}/ is the
    root.
    """
    for candidate in expand_braces(token):
        # relative to a script's own folder, or in the image (/app, /build: the tree's files)
        candidate = re.sub(r"^(?:\.{0,2}/)+", "", candidate)
        candidate = re.sub(r"^(?:app|build)/", "", candidate)
        candidate = re.sub(r"^(?:[A-Z][A-Z_]*|\$\{?\w+\}?)/", "", candidate)  # ROOT_DIR/…
        pattern = re.sub(r"<[^>]*>|\$\{?\w+\}?", "*", candidate)
        if any(fnmatch.fnmatchcase(p, pattern) or fnmatch.fnmatchcase(p, f"*/{pattern}")
               for p in relative_paths()):
            continue
        return False
    return True


def table_header(lines: list[str], index: int) -> str:
    """The header row of the markdown table that holds line `index`."""
    while index > 0 and lines[index - 1].startswith("|"):
        index -= 1
    return lines[index]


def references(readme: Path) -> tuple[set[str], set[str], set[str]]:
    """The paths, the function names and the other identifiers a README writes in backticks.

    A function name: a span written as a call (`name(…)`, `module.name(…)`), or the first word
    of a span in the first column of a table whose header says "function".
    """
    text = readme.read_text(encoding="utf-8")
    paths = {m for block in FENCE_RE.findall(text) for m in PATH_RE.findall(block)}
    functions: set[str] = set()
    others: set[str] = set()
    lines = FENCE_RE.sub("", text).splitlines()
    for index, line in enumerate(lines):
        first_cell = line.split("|")[1] if line.startswith("|") else ""
        in_function_table = "function" in table_header(lines, index).split("|")[1] \
            if line.startswith("|") else False
        for span in SPAN_RE.findall(line):
            paths.update(PATH_RE.findall(span))
            call = re.match(r"([\w.]+(?:/\w+)*)\(", span)
            if call:
                module, _, names = call.group(1).rpartition(".")
                if not module or module.split(".")[0] in PROJECT_MODULES:
                    functions.update(names.split("/"))
            elif in_function_table and f"`{span}`" in first_cell:
                word = span.split()[0]
                if IDENT_RE.fullmatch(word) and "_" in word and not word.isupper():
                    functions.add(word)
            elif re.fullmatch(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+", span):
                others.add(span)
    return paths, functions, others


@pytest.mark.parametrize("readme", readmes(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_path_and_function_in_backticks_exists(readme: Path) -> None:
    paths, functions, others = references(readme)
    assert sorted(p for p in paths if not path_exists(p)) == []
    assert sorted(f for f in functions if f not in defined_functions()) == []
    assert sorted(o for o in others if not is_code_word(o)) == []


def is_code_word(word: str) -> bool:
    """A word of the code; a counter's exposed name counts by the name the code gives it
    (prometheus_client adds `_total`)."""
    words = code_words()
    return word in words or (word.endswith("_total") and word[:-len("_total")] in words)


def test_the_scan_catches_a_missing_path_and_function(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("See `docker/common/scripts/nowhere.sh` and `docker/build.sh`.\n\n"
                      "| function | purpose |\n|---|---|\n| `gpu_detect_sm_arch` | real |\n"
                      "| `gpu_detect_nothing [x]` | gone |\n\n`pyhelpers.hub.no_such_call(x)`\n"
                      "`no_such" "_word_anywhere`\n", encoding="utf-8")
    paths, functions, others = references(readme)
    assert sorted(p for p in paths if not path_exists(p)) == ["docker/common/scripts/nowhere.sh"]
    assert sorted(f for f in functions if f not in defined_functions()) == [
        "gpu_detect_nothing", "no_such_call"]
    assert [o for o in others if o not in code_words()] == ["no_such" "_word_anywhere"]
    paths, functions, others = references(ROOT / "README.md")
    assert len(paths) > 20 and len(others) > 5, "the scan sees the main README's references"
    paths, functions, others = references(ROOT / "docker/common/README.md")
    assert len(functions) > 50
