"""deploy/kubernetes: the rendered overlays use the port, uid, probes and variables of the source.

Each overlay is rendered with `kubectl kustomize`; the expected values are read from the
Dockerfiles (USER, EXPOSE), the FastAPI app's routes and src/config/settings.py, never from a
second copy. A test skips, saying why, while the source it reads is not written yet.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from src.config.settings import SECRET_VARS

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE_DIR = ROOT / "deploy" / "kubernetes"
STACKS = ("vllm", "trt", "tool")
GPU_STACKS = ("vllm", "trt")
# Variables the manifests set for libraries inside the image rather than for the app.
LIBRARY_VARS = {
    "HF_HUB_OFFLINE": "huggingface_hub: never reach the Hub, models are baked in",
    "HOME": "torch, triton and vLLM write their caches under $HOME (read-only root filesystem)",
}
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def render(stack: str) -> list[dict[str, Any]]:
    """The objects of one overlay, rendered by kubectl's built-in kustomize."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH (scripts/test.sh installs kubernetes-client)")
    proc = subprocess.run(
        ["kubectl", "kustomize", str(KUSTOMIZE_DIR / "overlays" / stack)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, f"kubectl kustomize overlays/{stack}: {proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every overlay rendered once for the module: stack name -> its objects."""
    return {stack: render(stack) for stack in STACKS}


def one(objs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The single object of a kind."""
    found = [o for o in objs if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def server(objs: list[dict[str, Any]]) -> dict[str, Any]:
    """The server container of the Deployment."""
    (container,) = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def server_pod_labels(objs: list[dict[str, Any]]) -> dict[str, str]:
    """The pod template labels of an overlay's Deployment."""
    return one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    """The container's literal environment: name -> value."""
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def dockerfile_facts(stack: str) -> tuple[int, set[int]]:
    """The last USER (as a number) and every EXPOSEd port of docker/<stack>/Dockerfile."""
    path = ROOT / "docker" / stack / "Dockerfile"
    if not path.is_file():
        pytest.skip(f"docker/{stack}/Dockerfile is not written yet")
    users, ports = [], set()
    for line in path.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if words and words[0].upper() == "USER":
            users.append(words[1].split(":")[0])
        elif words and words[0].upper() == "EXPOSE":
            ports |= {int(w.split("/")[0]) for w in words[1:]}
    assert users and users[-1].isdigit(), f"docker/{stack}/Dockerfile: USER must be a numeric uid"
    return int(users[-1]), ports


def settings_var_names() -> set[str]:
    """Every UPPER_SNAKE string literal in src/config/settings.py: the variables the app reads."""
    path = ROOT / "src" / "config" / "settings.py"
    if not path.is_file():
        pytest.skip("src/config/settings.py is not written yet")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        n.value for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
        and re.fullmatch(r"[A-Z][A-Z0-9_]+", n.value)
    }


def shell_var_names() -> set[str]:
    """Every ${NAME} or $NAME that a shell script of the images reads (docker/**/*.sh)."""
    names: set[str] = set()
    for path in (ROOT / "docker").rglob("*.sh"):
        names |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", path.read_text(encoding="utf-8")))
    return names


def make_app() -> Any:
    """The served app (src.server) for a tool deployment, built without reading the environment."""
    if not (ROOT / "src" / "server.py").is_file():
        pytest.skip("src/server.py is not written yet")
    import src.server
    from src.config.settings import Settings

    return src.server.create_app(Settings(deploy_mode="tool", api_keys=("k",)), False)


def app_routes() -> set[tuple[str, str]]:
    """(method, path) of every route of the served app."""
    return {(m, r.path) for r in make_app().routes for m in getattr(r, "methods", None) or ()}


@pytest.mark.parametrize("stack", STACKS)
def test_each_overlay_renders_its_own_objects(rendered: dict, stack: str) -> None:
    """Each overlay holds its stack-prefixed objects, a Secret never, an HPA only for tool."""
    kinds = sorted(o["kind"] for o in rendered[stack])
    expected = ["Deployment", "NetworkPolicy", "PodDisruptionBudget", "Service"]
    assert kinds == sorted(expected + (["HorizontalPodAutoscaler"] if stack == "tool" else []))
    assert all(o["metadata"]["name"].startswith(f"{stack}-") for o in rendered[stack])


@pytest.mark.parametrize("stack", STACKS)
def test_every_selector_picks_exactly_this_stacks_pods(rendered: dict, stack: str) -> None:
    """Service, PDB, NetworkPolicy and spread selectors match these pods and no other stack's."""
    objs = rendered[stack]
    deploy = one(objs, "Deployment")
    pod = deploy["spec"]["template"]
    labels = server_pod_labels(objs)
    (spread,) = pod["spec"]["topologySpreadConstraints"]
    selectors = [
        one(objs, "Service")["spec"]["selector"],
        deploy["spec"]["selector"]["matchLabels"],
        one(objs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        one(objs, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
        spread["labelSelector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector.items() <= labels.items()
        assert selector.get("app.kubernetes.io/instance") == stack
        for other in set(STACKS) - {stack}:
            other_labels = server_pod_labels(rendered[other])
            assert not selector.items() <= other_labels.items(), f"{stack} selects {other} pods"


@pytest.mark.parametrize("stack", STACKS)
def test_probes_use_the_apps_health_routes(rendered: dict, stack: str) -> None:
    """Startup and readiness ask /healthz, liveness /livez, and the app serves both with GET."""
    container = server(rendered[stack])
    paths = {p: container[p]["httpGet"]["path"]
             for p in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert paths == {"startupProbe": "/healthz", "readinessProbe": "/healthz",
                     "livenessProbe": "/livez"}
    routes = app_routes()
    assert {("GET", "/healthz"), ("GET", "/livez")} <= routes


def test_probe_routes_tell_loading_from_alive() -> None:
    """Before the engines load, /livez answers 200 (no restart) and /healthz 503 (no traffic)."""
    from fastapi.testclient import TestClient

    client = TestClient(make_app())  # no `with`: the lifespan (model load) never runs
    assert client.get("/livez").status_code == 200
    assert client.get("/healthz").status_code == 503


@pytest.mark.parametrize("stack", STACKS)
def test_port_and_uid_are_the_images(rendered: dict, stack: str) -> None:
    """containerPort and PORT are the Dockerfile's EXPOSE; runAsUser is its USER."""
    objs = rendered[stack]
    container = server(objs)
    (port,) = container["ports"]
    pod_sc = one(objs, "Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert env_of(container)["PORT"] == str(port["containerPort"])
    assert pod_sc["runAsUser"] == container["securityContext"]["runAsUser"] == pod_sc["fsGroup"]
    assert one(objs, "Service")["spec"]["ports"][0]["targetPort"] == port["name"]
    uid, exposed = dockerfile_facts(stack)
    assert port["containerPort"] in exposed
    assert pod_sc["runAsUser"] == uid


@pytest.mark.parametrize("stack", STACKS)
def test_every_variable_is_read_by_the_app_or_the_image(rendered: dict, stack: str) -> None:
    """No variable the manifests set is ignored: the app, a script or a library reads it."""
    env = env_of(server(rendered[stack]))
    app_vars = settings_var_names()
    assert {"PORT", "TEXT_API_KEY_FILE", "SHUTDOWN_GRACE_S"} <= app_vars
    unknown = set(env) - app_vars - shell_var_names() - set(LIBRARY_VARS)
    assert not unknown, f"overlays/{stack} sets variables nothing reads: {sorted(unknown)}"


@pytest.mark.parametrize("stack", STACKS)
def test_api_key_is_a_mounted_secret_file_never_a_value(rendered: dict, stack: str) -> None:
    """TEXT_API_KEY_FILE points into a read-only Secret volume; no secret variable is set."""
    objs = rendered[stack]
    container = server(objs)
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    key_file = Path(env_of(container)["TEXT_API_KEY_FILE"])
    secret_volumes = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
    mounts = [m for m in container["volumeMounts"] if m["name"] in secret_volumes]
    assert any(key_file.parent == Path(m["mountPath"]) and m.get("readOnly") for m in mounts)
    names = {e["name"] for e in container["env"]}
    assert not names & set(SECRET_VARS)
    assert all("valueFrom" not in e for e in container["env"])
    assert "Secret" not in {o["kind"] for o in objs}


@pytest.mark.parametrize("stack", STACKS)
def test_container_is_locked_down_with_writable_scratch(rendered: dict, stack: str) -> None:
    """Non-root, read-only root, no escalation, no capabilities; /tmp and /dev/shm are emptyDirs."""
    container = server(rendered[stack])
    pod = one(rendered[stack], "Deployment")["spec"]["template"]["spec"]
    sc = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] and sc["runAsNonRoot"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    assert "emptyDir" in mounts["/tmp"]
    assert mounts["/dev/shm"]["emptyDir"]["medium"] == "Memory"
    assert env_of(container)["HOME"] == "/tmp"
    assert DIGEST.search(container["image"]), container["image"]


@pytest.mark.parametrize("stack", STACKS)
def test_gpus_only_for_gpu_stacks(rendered: dict, stack: str) -> None:
    """vLLM and TRT request and limit one GPU count (vLLM: TENSOR_PARALLEL_SIZE); tool none."""
    container = server(rendered[stack])
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    if stack not in GPU_STACKS:
        assert "nvidia.com/gpu" not in limits and "nvidia.com/gpu" not in requests
        return
    assert int(limits["nvidia.com/gpu"]) == int(requests["nvidia.com/gpu"]) >= 1
    if stack == "vllm":
        assert env_of(container)["TENSOR_PARALLEL_SIZE"] == str(limits["nvidia.com/gpu"])


@pytest.mark.parametrize("stack", STACKS)
def test_grace_period_outlasts_prestop_drain_and_engine_stop(rendered: dict, stack: str) -> None:
    """terminationGracePeriodSeconds > preStop pause + SHUTDOWN_GRACE_S + ENGINE_STOP_TIMEOUT."""
    settings_var_names()  # skips while settings.py is missing
    from src.config.settings import Settings

    container = server(rendered[stack])
    pod = one(rendered[stack], "Deployment")["spec"]["template"]["spec"]
    env, defaults = env_of(container), Settings()
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    drain = float(env.get("SHUTDOWN_GRACE_S", defaults.shutdown_grace_s))
    engine = float(env.get("ENGINE_STOP_TIMEOUT", defaults.engine_stop_timeout))
    assert pod["terminationGracePeriodSeconds"] > pause + drain + engine


def test_hpa_scales_the_tool_deployment_which_leaves_replicas_to_it(rendered: dict) -> None:
    """The tool HPA targets the prefixed Deployment, which sets no replica count of its own."""
    hpa = one(rendered["tool"], "HorizontalPodAutoscaler")
    deploy = one(rendered["tool"], "Deployment")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deploy["metadata"]["name"]
    assert "replicas" not in deploy["spec"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
