"""Every runtime setting has one definition.

The test lists the environment variables the runtime's shell (docker/common/scripts, the stacks'
scripts) and Python (src/, pyhelpers/, the download entry points) read, and where each gets a
default: `${NAME:-value}` or `settings_default NAME` in a shell library, a reader of src/config
given a default (`integer(env, "NAME", default, …)`), `os.environ.get("NAME", value)` or
`… or value` in Python, and `ENV NAME=value` in a Dockerfile's runtime stage. A name defaulted
in two places fails, unless SHARED says why both must exist.

Not definitions: the GPU and CPU presets of the stacks' env files (docker/<stack>/scripts/env/),
decisions on top of the defaults handed in with their source ("gpu preset"); a stack's own
identity (`settings_default NAME VALUE image`: ENGINE=vllm in the vllm image); reading an
optional count or flag as zero when absent (`${GPU_COUNT:-0}`, `… or 0`); a fallback that is
another variable (`${VLLM_DEVICE:-${baked}}`); and the text of a log message.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import image_instructions

ROOT = Path(__file__).resolve().parents[2]
NAME = r"[A-Z][A-Z0-9_]*"
SHELL_DEFAULT = re.compile(r"\$\{(" + NAME + r"):[-=]([^}$]+)\}")
SETTINGS_DEFAULT = re.compile(r"\bsettings_default\s+(" + NAME + r")\s+(\S+)\s+(\S+)")
LOG_LINE = re.compile(r"\blog_(debug|info|success|warn|err|section)\b")
ABSENT = ("", "0")
SHELL_READ = re.compile(r"\$\{!?(" + NAME + r")\b|\bsettings_require\s+\S+\s+([A-Z0-9_ ]+)")
# src/config's readers (parse.py) and the argument that holds their default, by position.
READERS = {"choice": 3, "integer": 2, "seconds": 2, "switch": 2, "_model_dir": 3}
# Names defaulted in two places on purpose: where, and why both exist.
SHARED = {
    "LOG_LEVEL": ({"docker/common/scripts/logs.sh", "pyhelpers/logs.py"},
                  "one set of rules in the two languages (tests/python/test_logs.py runs both)"),
    "LOG_FORMAT": ({"docker/common/scripts/logs.sh", "pyhelpers/logs.py"},
                   "one set of rules in the two languages (tests/python/test_logs.py runs both)"),
    "DEPLOY_MODE": ({"docker/common/scripts/deploy_mode.sh", "src/config/settings.py"},
                    "normalize_deploy_mode keeps the seed's documented behaviour; the app reads "
                    "the value it exported"),
}


def runtime_shell() -> list[Path]:
    """The shell the container runs (the build host's libraries under build/ excluded)."""
    files = [*(ROOT / "docker" / "common" / "scripts").glob("*.sh"),
             *(ROOT / "docker").glob("*/scripts/**/*.sh")]
    return sorted({p for p in files if "/common/scripts/build/" not in str(p)})


def runtime_python() -> list[Path]:
    """The Python the container runs: the app, src/config, pyhelpers and the download steps."""
    files = [*(ROOT / "src").rglob("*.py"), *(ROOT / "pyhelpers").glob("*.py"),
             *(ROOT / "docker").glob("*/download/*.py")]
    return sorted(p for p in files
                  if not p.is_symlink() and p.name != "validate.py")  # validate: build host


def is_preset(path: Path) -> bool:
    """A stack's env file: GPU or CPU presets, not definitions."""
    return path.parent.name == "env"


def python_defaults(path: Path) -> dict[str, int]:
    """Names a Python file gives a default, with the line."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            first, last = node.values[0], node.values[-1]  # get(…"NAME") or "value"
            if isinstance(first, ast.Call) and _called(first) == "get" and _present(last):
                for name in filter(None, map(_name_arg, first.args)):
                    found[name] = node.lineno
        if not isinstance(node, ast.Call):
            continue
        called, args = _called(node), node.args
        names = [n for n in map(_name_arg, args) if n]
        if not names:
            continue
        if called in READERS and (len(args) > READERS[called]
                                  or any(k.arg == "default" for k in node.keywords)):
            found[names[0]] = node.lineno
        elif called == "get" and _name_arg(args[0]) and len(args) == 2 and _present(args[1]):
            found[names[0]] = node.lineno  # os.environ.get("NAME", "value")
        elif called == "default" and len(args) == 3 and _present(args[1]) and \
                isinstance(args[1], ast.Constant):
            found[names[0]] = node.lineno  # src/config/resolve.py: a literal default
    return found


def _called(call: ast.Call) -> str:
    """The name of the function or method a call calls."""
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _name_arg(node: ast.expr) -> str | None:
    """A string literal that is a variable's name."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
            re.fullmatch(NAME, node.value) and len(node.value) > 2:
        return node.value
    return None


def _present(node: ast.expr) -> bool:
    """Whether a default holds a value: not "", None or 0 (absent read as zero)."""
    return not (isinstance(node, ast.Constant) and node.value in ("", None, 0, "0"))


def dockerfile_runtime_env(stack: str) -> set[str]:
    """Names the stack's image sets to a literal (not a build arg): the ENV of its stages, in its
    Dockerfile as the build assembles it (docker/common/Dockerfile.runtime's included)."""
    names = set()
    for line in image_instructions(stack):
        if line.startswith("ENV "):
            names |= {n for n, v in re.findall(r"\b(" + NAME + r")=(\S+)", line)
                      if not v.startswith("${")}
    return names


def definitions() -> dict[str, dict[str, int]]:
    """name -> {file: line} of every place that gives it a default."""
    places: dict[str, dict[str, int]] = defaultdict(dict)
    for path in runtime_shell():
        if is_preset(path):
            continue
        rel = str(path.relative_to(ROOT))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("#") or LOG_LINE.search(line):
                continue
            for match in SHELL_DEFAULT.finditer(line):
                if match.group(2) not in ABSENT:
                    places[match.group(1)].setdefault(rel, number)
            for match in SETTINGS_DEFAULT.finditer(line):
                if match.group(3) != "image":
                    places[match.group(1)].setdefault(rel, number)
    for path in runtime_python():
        for name, number in python_defaults(path).items():
            places[name].setdefault(str(path.relative_to(ROOT)), number)
    for stack in ("vllm", "trt", "tool"):
        for name in dockerfile_runtime_env(stack) - {"PATH", "PYTHONPATH", "HOME", "HF_HOME",
                                                     "PYTHONDONTWRITEBYTECODE",
                                                     "PYTHONUNBUFFERED", "APP_ROOT", "ENGINE",
                                                     "DOWNLOAD_PYTHON"}:
            places[name].setdefault(f"docker/{stack}/Dockerfile", 0)
    return places


def shell_reads() -> set[str]:
    """Every variable the runtime shell reads: ${NAME…}, ${!NAME} and settings_require's names."""
    names: set[str] = set()
    for path in runtime_shell():
        for match in SHELL_READ.finditer(path.read_text(encoding="utf-8")):
            names |= {match.group(1)} if match.group(1) else set(match.group(2).split())
    return names


def test_every_setting_is_defaulted_in_one_place() -> None:
    twice = {name: sorted(files) for name, files in definitions().items()
             if len(files) > 1 and set(files) != SHARED.get(name, (set(),))[0]}
    assert not twice, "defaulted in more than one place (one definition each, or SHARED):\n" + \
        "\n".join(f"  {name}: {', '.join(f'{f}:{files[f]}' for f in files)}"
                  for name, files in sorted(twice.items()) for files in [definitions()[name]])


@pytest.mark.parametrize("name", sorted(SHARED))
def test_the_shared_definitions_still_exist(name: str) -> None:
    """An entry of SHARED that no longer matches the code is removed, not left to excuse more."""
    assert set(definitions()[name]) == SHARED[name][0]


def test_the_shell_reads_what_src_config_resolves_without_a_default_of_its_own() -> None:
    """The settings the bootstrap resolves (src/config/resolve.py) are read by the shell as the
    bootstrap exported them: server.sh and warmup.sh, startup.sh's checks."""
    resolved = {"SERVER_APP", "HOST", "PORT", "UVICORN_WORKERS", "GATEWAY_WORKERS",
                "WARMUP_REQUEST_TIMEOUT",
                "WARMUP_MAX_WAIT", "SERVER_STOP_TIMEOUT", "CHAT_MODEL_PATH", "TOOL_MODEL_PATH",
                "TRT_ENGINE_DIR", "TRT_ENGINE_SM_ARCH", "TRT_ENGINE_RANKS"}
    assert resolved <= shell_reads()
    shell_defaults = {name for name, files in definitions().items()
                      if any(f.endswith(".sh") for f in files)}
    assert not resolved & shell_defaults


def test_the_finders_are_not_blind(tmp_path: Path) -> None:
    """Planted defaults are found; reads without one, zero fallbacks and log text are not."""
    planted = tmp_path / "planted.py"
    planted.write_text('import os\nA = os.environ.get("ALPHA", "x")\nB = get(env, "BRAVO") or 3\n'
                       'C = integer(env, "CHARLIE", 5, 1)\nD = get(env, "DELTA")\n'
                       'E = int(get(env, "ECHO") or 0)\nout.default("FOXTROT", "1", "default")\n')
    assert python_defaults(planted) == {"ALPHA": 2, "BRAVO": 3, "CHARLIE": 4, "FOXTROT": 7}
    line = 'x="${GOLF:-8000}" y="${HOTEL:-0}" z="${INDIA:-${other}}" w="${JULIET:-}"'
    assert [m.group(1) for m in SHELL_DEFAULT.finditer(line) if m.group(2) not in ABSENT] == \
        ["GOLF"]
    assert LOG_LINE.search('log_warn "[x]" "${KILO:-none}"')
