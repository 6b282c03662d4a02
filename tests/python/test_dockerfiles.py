"""The three stacks' Dockerfiles and .dockerignore files agree with each other and the contracts."""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STACKS = ["vllm", "trt", "tool"]
DOWNLOAD_PYTHON = {"vllm": "/opt/venv/bin/python", "trt": "/opt/dl/bin/python",
                   "tool": "/opt/venv/bin/python"}


def dockerfile_lines(stack: str) -> list[str]:
    """Return the Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (ROOT / "docker" / stack / "Dockerfile").read_text(encoding="utf-8")
    joined: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    return joined


def context_copy_sources(stack: str) -> set[str]:
    """Return every build-context path a COPY (not COPY --from) reads."""
    sources: set[str] = set()
    for line in dockerfile_lines(stack):
        if not line.upper().startswith("COPY "):
            continue
        words = [w for w in shlex.split(line[5:]) if not w.startswith("--")]
        if any(w.startswith("--from") for w in shlex.split(line[5:])):
            continue
        sources.update(w.rstrip("/") for w in words[:-1])
    return sources


def dockerignore_allowed(stack: str) -> list[str]:
    """Return the paths a deny-all .dockerignore admits again (its "!" lines)."""
    lines = (ROOT / "docker" / stack / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "*" in lines, f"{stack}/.dockerignore must start from deny-all '*'"
    return [line[1:] for line in lines if line.startswith("!")]


def covers(allowed: str, source: str) -> bool:
    """Whether an admitted path lets the COPY source (a path or a glob) through."""
    return (
        source == allowed
        or source.startswith(allowed + "/")
        or fnmatch.fnmatchcase(allowed, source)
    )


@pytest.mark.parametrize("stack", STACKS)
def test_dockerignore_admits_exactly_what_the_dockerfile_copies(stack: str) -> None:
    sources = context_copy_sources(stack)
    allowed = dockerignore_allowed(stack)
    uncovered = sorted(s for s in sources if not any(covers(a, s) for a in allowed))
    unused = sorted(a for a in allowed if not any(covers(a, s) for s in sources))
    assert not uncovered, f"{stack}: COPY reads paths .dockerignore keeps out: {uncovered}"
    assert not unused, f"{stack}: .dockerignore admits paths no COPY reads: {unused}"


@pytest.mark.parametrize("stack", STACKS)
def test_engine_stacks_copy_their_download_dir_and_tool_does_not(stack: str) -> None:
    has_download = "download" in context_copy_sources(stack)
    assert has_download == (stack != "tool")


@pytest.mark.parametrize("stack", STACKS)
def test_runtime_contract(stack: str) -> None:
    text = (ROOT / "docker" / stack / "Dockerfile").read_text(encoding="utf-8")
    lines = dockerfile_lines(stack)
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE)
    assert lines[0].startswith("ARG BASE_IMAGE=")
    runtime = lines[max(i for i, x in enumerate(lines) if x.startswith("FROM ")):]
    assert runtime[0].endswith(" AS runtime")
    assert "USER 10001" in runtime
    assert "EXPOSE 8000" in runtime
    assert any(x.startswith("HEALTHCHECK ") and "/healthz" in x for x in runtime)
    # PID 1 is tini, main.sh its command; the last ENTRYPOINT and CMD are the ones that count
    entrypoints = [x for x in runtime if x.startswith("ENTRYPOINT ")]
    cmds = [x for x in runtime if x.startswith("CMD ")]
    assert entrypoints[-1:] == ['ENTRYPOINT ["/usr/bin/tini", "--"]']
    assert cmds[-1:] == ['CMD ["/app/scripts/main.sh"]']
    # build-only files never reach the final stage; the download steps do, for
    # `main.sh --download-models` (the build's own, so a volume gets what the build would bake)
    copied = {shlex.split(x)[-2] for x in runtime if x.startswith("COPY ") and "--from" not in x}
    assert not any("wheel" in x or "local" in x or "requirements" in x for x in copied), copied
    assert "common/download/" in copied
    assert ("download/" in copied) == (stack != "tool")


@pytest.mark.parametrize("stack", STACKS)
def test_downloads_use_secrets_and_come_before_the_application_code(stack: str) -> None:
    lines = dockerfile_lines(stack)
    download_runs = [x for x in lines if x.startswith("RUN ") and "download/" in x]
    assert download_runs, "no download step"
    for run in download_runs:
        assert "--mount=type=secret,id=hf_token,required=false" in run
        assert "--mount=type=secret,id=ca_bundle,required=false" in run
    assert not any("HF_TOKEN" in x for x in lines if x.startswith(("ARG ", "ENV ", "LABEL ")))
    runtime = lines[max(i for i, x in enumerate(lines) if x.startswith("FROM ")):]
    models_at = next(i for i, x in enumerate(runtime) if "--from=models" in x)
    app_at = min(i for i, x in enumerate(runtime) if x.startswith("COPY") and " src/ " in x)
    assert models_at < app_at, "application code must come after the models (cache)"
    # the download stage copies only the download modules of pyhelpers, not the package
    start = next(i for i, x in enumerate(lines) if x.endswith(" AS models"))
    end = next(i for i, x in enumerate(lines) if i > start and x.startswith("FROM "))
    models = lines[start:end]
    pyhelpers_copies = [x for x in models if x.startswith("COPY") and "pyhelpers" in x]
    assert pyhelpers_copies and all("pyhelpers/ " not in x for x in pyhelpers_copies)


def requirement_lines(stack: str, *, engine: bool, download: bool) -> list[str]:
    """The requirement lines one venv of a stack gets, filtered by markers as the builder does."""
    text = (ROOT / "docker" / stack / "requirements.txt").read_text(encoding="utf-8")
    lines = [x for x in text.splitlines() if x.strip() and not x.lstrip().startswith("#")]
    if not engine:
        lines = [x for x in lines if not x.endswith("# engine")]
    return [x for x in lines if x.endswith("# download") == download]


def pins(lines: list[str]) -> dict[str, str]:
    """Name -> pinned version of the 'name==version' lines (options skipped)."""
    out: dict[str, str] = {}
    for line in lines:
        if line.startswith("-"):
            continue
        name, _, version = line.split("#")[0].strip().partition("==")
        key = name.lower().replace("_", "-")
        assert key not in out, f"{name} pinned twice in one venv"
        out[key] = version
    return out


# tensorrt_llm 1.2.1's own requirements (its PyPI metadata) on what the stack also pins.
TRTLLM_121_BOUNDS = {
    "torch": ">=2.9.1,<=2.10.0a0", "transformers": "==4.57.3",
    "fastapi": ">=0.120.1,<=0.121.3", "nvidia-ml-py": ">=13",
    # transformers 4.57.3 requires huggingface-hub>=0.34.0,<1.0
    "huggingface-hub": ">=0.34.0,<1.0",
}


@pytest.mark.parametrize("engine", [True, False])
def test_trt_venvs_resolve_apart(engine: bool) -> None:
    from packaging.specifiers import SpecifierSet

    venv_lines = requirement_lines("trt", engine=engine, download=False)
    venv = pins(venv_lines)
    download = pins(requirement_lines("trt", engine=engine, download=True))
    assert download["huggingface-hub"].startswith("2."), "pyhelpers/hub.py needs hub 2.x"
    if engine:
        assert venv["tensorrt-llm"] == "1.2.1"
        for name, spec in TRTLLM_121_BOUNDS.items():
            assert venv[name] in SpecifierSet(spec), f"{name}=={venv[name]} breaks {spec}"
    else:
        assert not {"tensorrt-llm", "torch", "transformers", "huggingface-hub"} & set(venv)
    options = [x for x in venv_lines if x.startswith("-")]
    assert options == (["--extra-index-url https://pypi.nvidia.com  # engine"] if engine else [])


def test_trt_downloads_run_in_the_download_venv_at_build_and_run_time() -> None:
    lines = dockerfile_lines("trt")
    start = next(i for i, x in enumerate(lines) if x.endswith(" AS models"))
    end = next(i for i, x in enumerate(lines) if i > start and x.startswith("FROM "))
    downloads = [x for x in lines[start:end] if x.startswith("RUN ") and "download/" in x]
    assert downloads and all("/opt/venv/bin/python" not in x for x in downloads)
    assert all(x.count("/opt/dl/bin/python") == 1 for x in downloads)
    runtime = lines[max(i for i, x in enumerate(lines) if x.startswith("FROM ")):]
    assert "COPY --from=builder /opt/dl /opt/dl" in runtime
    assert "ENV DOWNLOAD_PYTHON=/opt/dl/bin/python" in runtime


@pytest.mark.parametrize("stack", STACKS)
def test_models_stage_runs_the_stacks_download_steps_unless_bake_models_is_0(stack: str) -> None:
    """One models.py call per stack, the one main.sh --download-models makes; BAKE_MODELS=0
    skips it and leaves the model directories empty (the runtime stage still copies them)."""
    lines = dockerfile_lines(stack)
    start = next(i for i, x in enumerate(lines) if x.endswith(" AS models"))
    end = next(i for i, x in enumerate(lines) if i > start and x.startswith("FROM "))
    models = lines[start:end]
    assert "ARG BAKE_MODELS=1" in models
    (run,) = [x for x in models if x.startswith("RUN ") and "download/" in x]
    skip = re.search(r'; +mkdir -p /opt/models[^;]*; +if \[ "\$\{BAKE_MODELS\}" = 0 \]; then '
                     r'[^;]*; exit 0; fi; +(.*)$', run)
    assert skip, run
    assert skip.group(1).strip() == \
        f"{DOWNLOAD_PYTHON[stack]} /build/common/download/models.py {stack}"


def test_vllm_kv_dtypes_are_the_apps() -> None:
    from src.config.settings import KV_DTYPES

    text = (ROOT / "docker/vllm/scripts/env/defaults.sh").read_text(encoding="utf-8")
    found = re.search(r"^VLLM_KV_DTYPES=\(([^)]*)\)", text, re.MULTILINE)
    assert found, "docker/vllm/scripts/env/defaults.sh defines no VLLM_KV_DTYPES=(...)"
    assert tuple(found.group(1).split()) == KV_DTYPES
