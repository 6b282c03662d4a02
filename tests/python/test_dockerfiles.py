"""The stacks' Dockerfiles as the build assembles them (docker/<stack>/Dockerfile, then the
runtime stage every stack shares, docker/common/Dockerfile.runtime; conftest.assembled_dockerfile
asks context.sh's build_dockerfile_assemble): the contracts each image keeps."""

from __future__ import annotations

import fnmatch
import re
import shlex

import pytest
from conftest import (
    ROOT,
    STACKS,
    assembled_dockerfile,
    dockerfile_instructions,
    dockerfile_stages,
    image_instructions,
)

from src.config.settings import Settings
from src.config.shell import Server
from src.config.timers import HEALTHCHECKS

FRAGMENT = ROOT / "docker" / "common" / "Dockerfile.runtime"
DOWNLOAD_PYTHON = {"vllm": "/opt/venv/bin/python", "trt": "/opt/dl/bin/python",
                   "tool": "/opt/venv/bin/python"}
# The application code: what a code change touches, copied last.
APP_CODE = ("pyhelpers/", "src/", "common/scripts/", "scripts/")
# The per-build arguments: they change with every build.
PER_BUILD = ("BUILD_DATE", "VCS_REF", "SOURCE_URL")
# What the shared runtime stage alone sets: no stack file holds these instructions.
SHARED_KINDS = ("USER", "WORKDIR", "EXPOSE", "ENTRYPOINT", "CMD", *(f"ARG {n}" for n in PER_BUILD))


def stage(stack: str, name: str) -> list[str]:
    """The instructions of one stage of the stack's assembled Dockerfile."""
    (found,) = [s.instructions for s in dockerfile_stages(stack) if s.name == name]
    return found


def context_copy(line: str) -> list[str]:
    """The build-context paths a COPY instruction reads; none for COPY --from or no COPY."""
    if not line.startswith("COPY ") or "--from=" in line:
        return []
    return [w.rstrip("/") for w in shlex.split(line[5:]) if not w.startswith("--")][:-1]


def env_of(lines: list[str]) -> dict[str, str]:
    """NAME -> value of the ENV instructions among lines, the later winning."""
    return dict(re.findall(r"\b([A-Z_][A-Z0-9_]*)=(\S+)",
                           " ".join(x for x in lines if x.startswith("ENV "))))


def labels_of(lines: list[str]) -> dict[str, str]:
    """key -> value of the LABEL instructions among lines, the later winning."""
    labels: dict[str, str] = {}
    for line in lines:
        if line.startswith("LABEL "):
            labels.update(w.split("=", 1) for w in shlex.split(line[6:]))
    return labels


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
def test_the_stack_file_keeps_what_differs_and_the_runtime_stage_is_shared(stack: str) -> None:
    """base, builder, models and stack are the stack's; runtime (FROM stack) is the fragment's,
    and the stack's file holds none of what the fragment sets for every image."""
    text = assembled_dockerfile(stack)
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE)
    assert dockerfile_instructions(text)[0].startswith("ARG BASE_IMAGE=")
    assert [(s.name, s.parent) for s in dockerfile_stages(stack)] == [
        ("base", "${BASE_IMAGE}"), ("builder", "base"), ("models", "builder"),
        ("stack", "base"), ("runtime", "stack")]
    own = dockerfile_instructions((ROOT / "docker" / stack / "Dockerfile").read_text("utf-8"))
    shared = dockerfile_instructions(FRAGMENT.read_text(encoding="utf-8"))
    assert shared[0] == "FROM stack AS runtime"
    assert not [x for x in shared[1:] if x.startswith("FROM ")]
    assert not [x for x in own if x.startswith(SHARED_KINDS) or " AS runtime" in x]
    assert not [x for x in shared if x.startswith("HEALTHCHECK ")], "each stack has its own"


@pytest.mark.parametrize("stack", STACKS)
def test_the_image_runs_main_sh_under_tini_as_10001_with_the_timers_healthcheck(stack: str) -> None:
    image = image_instructions(stack)
    assert [x for x in image if x.startswith("USER ")] == ["USER 10001"]
    (useradd,) = [x for x in image if "useradd" in x]
    assert "--uid 10001 --gid 10001" in useradd and "chown 10001:10001 /app" in useradd
    assert [x for x in image if x.startswith("WORKDIR ")] == ["WORKDIR /app"]
    assert [x for x in image if x.startswith("EXPOSE ")] == [f"EXPOSE {Server.port}"]
    # the start-up timers come from one table, so Docker gives up when warmup does; the check
    # reads PORT through src/config (pyhelpers/healthcheck.py)
    (check,) = [x for x in image if x.startswith("HEALTHCHECK ")]
    assert " ".join(check.split()) == (
        f"HEALTHCHECK {HEALTHCHECKS[stack].dockerfile_options()} "
        'CMD ["/opt/venv/bin/python", "-m", "pyhelpers.healthcheck"]')
    # PID 1 is tini, main.sh its command
    entrypoints = [x for x in image if x.startswith("ENTRYPOINT ")]
    assert entrypoints == ['ENTRYPOINT ["/usr/bin/tini", "--"]']
    assert [x for x in image if x.startswith("CMD ")] == ['CMD ["/app/scripts/main.sh"]']


@pytest.mark.parametrize("stack", STACKS)
def test_labels_name_the_stack_and_the_build(stack: str) -> None:
    labels = labels_of(image_instructions(stack))
    oci = "org.opencontainers.image."
    assert labels.pop(oci + "title") == f"text-inference {stack}"
    assert labels.pop(oci + "description").endswith(" served by src.server:app")
    assert labels == {oci + "created": "${BUILD_DATE}", oci + "revision": "${VCS_REF}",
                      oci + "source": "${SOURCE_URL}", oci + "base.name": "${BASE_IMAGE}"}


@pytest.mark.parametrize("stack", STACKS)
def test_image_env_is_written_after_every_env_from_build_args_the_stage_declares(
        stack: str) -> None:
    """/app/image.env (what --explain calls `image`) holds every ENV of the image; an ENV from a
    build argument names an ARG its stage declared before it (else it would be empty)."""
    image = image_instructions(stack)
    (written,) = [i for i, x in enumerate(image) if x == "RUN env >/app/image.env"]
    assert max(i for i, x in enumerate(image) if x.startswith("ENV ")) < written
    for name in ("stack", "runtime"):
        lines = stage(stack, name)
        for i, line in enumerate(lines):
            for arg in re.findall(r"=\$\{([A-Z_]+)\}", line) if line.startswith("ENV ") else ():
                assert any(re.match(rf"ARG {arg}\b", x) for x in lines[:i]), (name, arg)
    env = env_of(image)
    assert env.get("ENGINE") == (None if stack == "tool" else stack)
    assert env["DEPLOY_MODE"] == "${DEPLOY_MODE}"
    assert f"ARG DEPLOY_MODE={'tool' if stack == 'tool' else 'both'}" in stage(stack, "stack")
    assert (env["APP_ROOT"], env["PYTHONPATH"], env["PATH"]) == ("/app", "/app",
                                                                 "/opt/venv/bin:${PATH}")


@pytest.mark.parametrize("stack", STACKS)
def test_code_changes_rerun_no_download_and_build_date_invalidates_no_layer(stack: str) -> None:
    image = image_instructions(stack)
    layers = [i for i, x in enumerate(image) if x.startswith(("RUN ", "COPY ", "ADD "))]
    app = [i for i, x in enumerate(image) if context_copy(x) and
           all(f"{s}/" in APP_CODE for s in context_copy(x))]
    assert len(app) == len(APP_CODE) and layers[-len(app) - 1:-1] == app, "application code last"
    # then only its bytecode, compiled from what was copied (the app writes none at run time)
    assert image[layers[-1]] == "RUN python3 -m compileall -q /app"
    assert env_of(image)["PYTHONDONTWRITEBYTECODE"] == "1"
    for name in PER_BUILD:
        (declared,) = [i for i, x in enumerate(image) if re.match(rf"ARG {name}\b", x)]
        assert declared > layers[-1], f"ARG {name} before a layer invalidates it at every build"
    # the stages up to the download read no application code from the context
    for name in ("base", "builder", "models"):
        read = [s for x in stage(stack, name) for s in context_copy(x)]
        assert not [s for s in read if f"{s}/" in APP_CODE or s.startswith(("src/", "scripts/",
                                                                            "common/scripts/"))]


@pytest.mark.parametrize("stack", STACKS)
def test_dockerignore_admits_exactly_what_the_dockerfile_copies(stack: str) -> None:
    sources = {s for x in dockerfile_instructions(assembled_dockerfile(stack))
               for s in context_copy(x)}
    allowed = dockerignore_allowed(stack)
    uncovered = sorted(s for s in sources if not any(covers(a, s) for a in allowed))
    unused = sorted(a for a in allowed if not any(covers(a, s) for s in sources))
    assert not uncovered, f"{stack}: COPY reads paths .dockerignore keeps out: {uncovered}"
    assert not unused, f"{stack}: .dockerignore admits paths no COPY reads: {unused}"


@pytest.mark.parametrize("stack", STACKS)
def test_the_image_gets_the_download_steps_and_no_build_only_file(stack: str) -> None:
    """Build-only files (wheels, local models, requirements) never reach the image; the download
    steps do, for `main.sh --download-models` (the build's own, so a volume gets what the build
    would bake); only the engine stacks have download/ of their own."""
    copied = {s for x in image_instructions(stack) for s in context_copy(x)}
    assert not [x for x in copied if "wheel" in x or "local" in x or "requirements" in x]
    assert "common/download" in copied
    assert ("download" in copied) == (stack != "tool")


@pytest.mark.parametrize("stack", STACKS)
def test_downloads_use_secrets_and_only_the_download_code(stack: str) -> None:
    lines = dockerfile_instructions(assembled_dockerfile(stack))
    download_runs = [x for x in lines if x.startswith("RUN ") and "download/" in x]
    assert download_runs, "no download step"
    for run in download_runs:
        assert "--mount=type=secret,id=hf_token,required=false" in run
        assert "--mount=type=secret,id=ca_bundle,required=false" in run
    assert not any("HF_TOKEN" in x for x in lines if x.startswith(("ARG ", "ENV ", "LABEL ")))
    # the download stage copies only the download modules of pyhelpers, not the package
    pyhelpers = [s for x in stage(stack, "models") for s in context_copy(x) if "pyhelpers" in s]
    assert pyhelpers and "pyhelpers" not in pyhelpers


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
    downloads = [x for x in stage("trt", "models") if x.startswith("RUN ") and "download/" in x]
    assert downloads and all("/opt/venv/bin/python" not in x for x in downloads)
    assert all(x.count("/opt/dl/bin/python") == 1 for x in downloads)
    image = image_instructions("trt")
    assert "COPY --from=builder /opt/dl /opt/dl" in image
    assert env_of(image)["DOWNLOAD_PYTHON"] == "/opt/dl/bin/python"


@pytest.mark.parametrize("stack", STACKS)
def test_models_stage_runs_the_stacks_download_steps_unless_bake_models_is_0(stack: str) -> None:
    """One models.py call per stack, the one main.sh --download-models makes; BAKE_MODELS=0
    skips it and leaves the model directories empty (the image still copies them)."""
    models = stage(stack, "models")
    assert "ARG BAKE_MODELS=1" in models
    (run,) = [x for x in models if x.startswith("RUN ") and "download/" in x]
    skip = re.search(r'; +mkdir -p /opt/models[^;]*; +if \[ "\$\{BAKE_MODELS\}" = 0 \]; then '
                     r'[^;]*; exit 0; fi; +(.*)$', run)
    assert skip, run
    assert skip.group(1).strip() == \
        f"{DOWNLOAD_PYTHON[stack]} /build/common/download/models.py {stack}"


@pytest.mark.parametrize("stack", STACKS)
def test_the_image_layout_is_src_configs_and_the_image_sets_no_setting(stack: str) -> None:
    """The models stage bakes into the directories src/config defaults to (it cannot read
    src/config itself: any change there would re-run the downloads); the image's stages leave
    every setting to src/config, so nothing is defined twice."""
    env = env_of(stage(stack, "models"))
    paths = {name: env[name] for name in ("CHAT_MODEL_PATH", "TOOL_MODEL_PATH", "TRT_ENGINE_DIR")
             if name in env}
    assert paths == {name: getattr(Settings, name.lower()) for name in paths}
    assert ("TOOL_MODEL_PATH" in paths) and (("CHAT_MODEL_PATH" in paths) == (stack != "tool"))
    image_env = env_of(image_instructions(stack))
    for name in ("CHAT_MODEL_PATH", "TOOL_MODEL_PATH", "TRT_ENGINE_DIR", "HOST", "PORT"):
        assert name not in image_env, f"{stack}: the image sets {name}"
