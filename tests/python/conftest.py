"""Shared pytest fixtures. Each fixture is small and says what it gives."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKE_OPENAI = ROOT / "tests" / "apps" / "fake_openai.py"
SERVER_SH = ROOT / "docker" / "common" / "scripts" / "server.sh"
TEST_KEY = "test-key-123"


def _load_module(name: str, path: Path) -> types.ModuleType:
    """A Python file imported by path (scripts/ and tests/apps/ are not packages)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# --- the served app (src/) -------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight BERT classifier (labels negative, neutral, positive), made once."""
    out = tmp_path_factory.mktemp("tiny-model")
    tiny_model = _load_module("tiny_model", ROOT / "scripts/lib/tiny_model.py")
    return tiny_model.make_tiny_model(out, ("negative", "neutral", "positive"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll check() every 50 ms until it is true; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def pid_gone(pid: int) -> bool:
    """True when the process no longer exists (or is a zombie waiting for its parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"


@functools.cache
def _server_sh_argv(gateway_workers: str) -> tuple[str, ...]:
    """The uvicorn command server.sh's resolve_uvicorn_cmd builds (HOST=127.0.0.1, port 1), with
    the settings the bootstrap would export (src/config)."""
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": "1", "APP_ROOT": str(ROOT),
           "SERVER_APP": "src.server:app", "UVICORN_WORKERS": "1",
           "GATEWAY_WORKERS": gateway_workers,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    script = 'source "$1" && resolve_uvicorn_cmd "$2" && printf "%s\\0" "${UVICORN_CMD[@]}"'
    found = subprocess.run(["bash", "-c", script, "argv", str(SERVER_SH), str(ROOT)], env=env,
                           capture_output=True, timeout=120, check=True)
    launcher, *rest = found.stdout.decode().split("\0")[:-1]
    return (shutil.which(launcher, path=env["PATH"]) or launcher, *rest)


def uvicorn_argv(port: int, app: str = "src.server:app", gateway_workers: str = "1") -> list[str]:
    """server.sh's uvicorn command for app (module:attribute) on 127.0.0.1:port (with
    GATEWAY_WORKERS above 1: the supervisor's command, uvicorn's within it)."""
    argv = list(_server_sh_argv(gateway_workers))
    argv[argv.index("src.server:app")] = app
    argv[argv.index("--port") + 1] = str(port)
    return argv


class AppProcess:
    """src.server:app started with server.sh's uvicorn command on a free port (fake chat engine)."""

    def __init__(self, env: dict[str, str], port: int, engine_port: int, log: Path,
                 app: str = "src.server:app") -> None:
        """Start uvicorn serving app with env (stdout and stderr to log)."""
        self.port, self.engine_port, self.log = port, engine_port, log
        self.url = f"http://127.0.0.1:{port}"
        self.engine_url = f"http://127.0.0.1:{engine_port}"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                uvicorn_argv(port, app, env.get("GATEWAY_WORKERS", "1")), cwd=ROOT, env=env,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def output(self) -> str:
        """Everything the server wrote so far."""
        return self.log.read_text(errors="replace")

    def get(self, path: str, **kw: object) -> httpx.Response:
        """GET on the app; connection errors propagate."""
        return httpx.get(self.url + path, timeout=5, **kw)  # type: ignore[arg-type]

    def health(self) -> int:
        """/healthz status code; 0 while the server does not answer."""
        try:
            return self.get("/healthz").status_code
        except httpx.HTTPError:
            return 0

    def wait_ready(self, timeout: float = 30) -> None:
        """Wait for /healthz 200."""
        wait_until(lambda: self.health() == 200 or self.proc.poll() is not None, timeout,
                   "/healthz 200")
        assert self.proc.poll() is None, f"server exited early:\n{self.output()}"

    def engine_stats(self) -> dict:
        """The fake engine's /stats."""
        return httpx.get(self.engine_url + "/stats", timeout=5).json()

    def wait_exit(self, timeout: float = 30) -> int:
        """Wait for the server to exit; its return code (negative: killed by that signal)."""
        return self.proc.wait(timeout=timeout)

    def engine_pids(self) -> list[int]:
        """Pids of fake engines started for this app (found by their port in /proc)."""
        marker = f"{FAKE_OPENAI.name}\0--port\0{self.engine_port}\0"
        pids = []
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                if entry.name.isdigit() and marker in (entry / "cmdline").read_text():
                    pids.append(int(entry.name))
        return [pid for pid in pids if not pid_gone(pid)]

    def stop(self) -> list[int]:
        """Teardown: SIGTERM (SIGKILL after 20 s); kill and return engines left behind."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        leftovers = self.engine_pids()
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return leftovers


def start_app_process(log: Path, fake_args: str = "", app: str = "src.server:app",
                      **env: str) -> AppProcess:
    """Start app (chat mode, fake engine with fake_args) with env on top of the defaults."""
    port, engine_port = free_port(), free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "TOOL_"))}
    full.update({
        "PYTHONPATH": str(ROOT), "TEXT_API_KEY": TEST_KEY, "DEPLOY_MODE": "chat",
        "PORT": str(port), "CHAT_ENGINE_PORT": str(engine_port),
        "CHAT_ENGINE_CMD": f"{sys.executable} {FAKE_OPENAI} --port {engine_port} {fake_args}",
        "CHAT_HEALTH_INTERVAL_S": "0.2", "CHAT_HEALTH_TIMEOUT_S": "0.5",
        "ENGINE_STOP_TIMEOUT": "5", "SHUTDOWN_GRACE_S": "5",
        # Off, so the fake's counters hold only what a test sends; the readiness tests of
        # test_server_process.py turn it on.
        "CHAT_GENERATION_CHECK": "0",
    })
    full.update(env)
    return AppProcess(full, port, engine_port, log, app)


@contextlib.contextmanager
def served_app(log: Path, fake_args: str = "", **env: str) -> Iterator[AppProcess]:
    """start_app_process, ready (90 s at most); stopped after, with no engine left behind and
    no traceback in its output (for module-scoped fixtures)."""
    app = start_app_process(log, fake_args, **env)
    try:
        app.wait_ready(timeout=90)
        yield app
    finally:
        leftovers = app.stop()
    assert not leftovers, f"chat engine processes left behind: {leftovers}"
    assert "Traceback" not in app.output()


@pytest.fixture
def app_process(tmp_path: Path) -> Iterator[Callable[..., AppProcess]]:
    """A factory: start_app(fake_args="--delay 0.1", app=..., **env) → a running AppProcess
    (killed after).

    The default deploy mode is chat, served by tests/apps/fake_openai.py through CHAT_ENGINE_CMD,
    with the start-up generation check off (CHAT_GENERATION_CHECK=1 turns it on).
    """
    started: list[AppProcess] = []

    def start_app(fake_args: str = "", app: str = "src.server:app", **env: str) -> AppProcess:
        log = tmp_path / f"server-{len(started)}.log"
        app_process = start_app_process(log, fake_args, app, **env)
        started.append(app_process)
        return app_process

    yield start_app
    leftovers = [pid for app in started for pid in app.stop()]
    assert not leftovers, f"chat engine processes left behind: {leftovers}"


# --- the Hub mirror (scripts/lib/hub_mirror.py, pyhelpers.hub) --------------------------------


hub_mirror = _load_module("hub_mirror", ROOT / "scripts/lib/hub_mirror.py")
flaky_proxy = _load_module("flaky_proxy", ROOT / "tests/apps/flaky_proxy.py")


class HubMirror:
    """A running Olah mirror: `url`, `mirrors`, and publish() to add commits to its repos."""

    def __init__(self, server: object, mirrors: Path) -> None:
        """Wrap a started hub_mirror.MirrorServer serving `mirrors`."""
        self.server, self.mirrors, self.url = server, mirrors, server.url  # type: ignore[attr-defined]

    def publish(self, repo_id: str, files: dict[str, bytes | str], message: str = "publish",
                lfs_threshold: int = 4096) -> str:
        """Commit `files` (path → content) as the whole content of repo_id; return the sha."""
        src = self.mirrors.parent / "src" / f"{repo_id.replace('/', '__')}-{time.monotonic_ns()}"
        for rel, content in files.items():
            path = src / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            data = content.encode() if isinstance(content, str) else content
            path.write_bytes(data)
        return hub_mirror.publish_dir(self.mirrors, repo_id, src, message, lfs_threshold)

    def git(self, repo_id: str, *args: str) -> str:
        """Run git in the mirrored repo of repo_id (tags, branches, rev-parse)."""
        return hub_mirror.git(hub_mirror.repo_path(self.mirrors, repo_id), *args)


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubMirror]:
    """One Olah server (offline, 127.0.0.1, free port) for the session; stopped and gone after."""
    mirrors = tmp_path_factory.mktemp("hub") / "mirrors"
    mirrors.mkdir()
    server = hub_mirror.MirrorServer(mirrors).start()
    pid = server.pid
    yield HubMirror(server, mirrors)
    server.stop()
    wait_until(lambda: pid_gone(pid), 10, "the Olah server to exit")


@pytest.fixture
def hub(hub_server: HubMirror, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> HubMirror:
    """The session's mirror with HF_ENDPOINT pointing at it and no token anywhere."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "no-hf-token"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_TOKEN_FILE", str(tmp_path / "no-secret"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_DOWNLOAD_RETRIES", raising=False)
    return hub_server


@pytest.fixture
def flaky_hub(hub: HubMirror, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """tests/apps/flaky_proxy.py in front of the session's mirror, as HF_ENDPOINT; stopped after.

    Queue faults with `flaky_hub.add(flaky_proxy.Fault(...))`; `flaky_hub.requests` is the log.
    """
    proxy = flaky_proxy.FlakyProxy(hub.url).start()
    monkeypatch.setenv("HF_ENDPOINT", proxy.url)
    yield proxy
    proxy.stop()


# --- the Dockerfiles (docker/<stack>/Dockerfile + docker/common/Dockerfile.runtime) ----------

CONTEXT_SH = ROOT / "docker" / "common" / "scripts" / "build" / "context.sh"
STACKS = ("vllm", "trt", "tool")


@functools.cache
def assembled_dockerfile(stack: str) -> str:
    """docker/<stack>/Dockerfile as the build context gets it: context.sh's
    build_dockerfile_assemble (the stack's file, then the shared runtime stage)."""
    script = 'source "$1" && build_dockerfile_assemble "$2"'
    done = subprocess.run(["bash", "-c", script, "assemble", str(CONTEXT_SH),
                           str(ROOT / "docker" / stack)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def dockerfile_instructions(text: str) -> list[str]:
    """A Dockerfile's instructions, one string each: continuation lines joined, comment and
    blank lines dropped (as Docker drops them, inside a continuation too)."""
    instructions: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        instructions.append(current + line)
        current = ""
    return instructions


@dataclasses.dataclass
class Stage:
    """One build stage: its name, what it builds FROM, and its instructions after FROM."""

    name: str
    parent: str
    instructions: list[str]


def dockerfile_stages(stack: str) -> list[Stage]:
    """The stages of the assembled Dockerfile of a stack, in order (global ARGs left out)."""
    stages: list[Stage] = []
    for line in dockerfile_instructions(assembled_dockerfile(stack)):
        words = line.split()
        if words[0].upper() == "FROM":
            assert len(words) == 4 and words[2].upper() == "AS", f"{stack}: unnamed stage {line!r}"
            stages.append(Stage(words[3], words[1], []))
        elif stages:
            stages[-1].instructions.append(line)
    return stages


def image_instructions(stack: str) -> list[str]:
    """The instructions that make the image: the last stage and the stages it builds FROM,
    the first of them first (their ENV, LABEL, HEALTHCHECK … carry over)."""
    stages = dockerfile_stages(stack)
    by_name = {stage.name: stage for stage in stages}
    chain = [stages[-1]]
    while chain[-1].parent in by_name:
        chain.append(by_name[chain[-1].parent])
    return [line for stage in reversed(chain) for line in stage.instructions]
