"""deploy/kubernetes: every overlay and component, rendered, agrees with the source it runs.

Each overlay is rendered with `kubectl kustomize`, and each optional component on top of the
stack overlays it is meant for (an overlay of the user's own: `resources: [../<stack>]`,
`components: [...]`). The renders are validated (kubernetes-validate --strict, checkov) and
every property is asserted on the rendered objects. The expected values are read from the
Dockerfiles (USER, EXPOSE), the app's routes and src/config (settings.py, and timers.py: the
table every timer of a start and a stop comes from), never from a second copy.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import image_instructions

from src.config.settings import SECRET_VARS, Settings
from src.config.timers import HEALTHCHECKS, load_timers

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE_DIR = ROOT / "deploy" / "kubernetes"
STACKS = ("vllm", "trt", "tool")
GPU_STACKS = ("vllm", "trt")
# Every overlay and the stack it deploys.
OVERLAYS = {"vllm": "vllm", "trt": "trt", "tool": "tool",
            "vllm-volume": "vllm", "trt-volume": "trt"}
# Every optional component and the stacks it is for; weights-volume is rendered through the
# <stack>-volume overlays.
COMPONENTS = {"surge-rollout": GPU_STACKS, "runtime-class": GPU_STACKS,
              "gpu-product": GPU_STACKS, "service-account": STACKS, "priority-class": STACKS,
              "gateway-only": STACKS, "service-monitor": STACKS, "hpa-in-flight": GPU_STACKS}
# What the deploy/kubernetes/README.md allows for the image pull before the startup probe's
# budget starts (the GPU images carry tens of GB of weights), and the longest streamed answer a
# rollout lets finish on a GPU stack.
PULL_ALLOWANCE_S = {"vllm": 1800, "trt": 1800, "tool": 300}
LONG_STREAM_S = 120
# Variables the manifests set for libraries inside the image rather than for the app.
LIBRARY_VARS = {
    "HF_HUB_OFFLINE": "huggingface_hub: never reach the Hub, models are baked in",
    "HOME": "torch, triton and vLLM write their caches under $HOME (read-only root filesystem)",
    "OMP_NUM_THREADS": "torch: its CPU thread pool (the tool model on CPU)",
}
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
CHECKOV = ROOT / ".venv" / "tools" / "checkov" / "bin" / "checkov"

Objects = list[dict[str, Any]]


def kustomize(directory: Path) -> str:
    """The rendered YAML of a kustomization directory (kubectl's built-in kustomize)."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH (scripts/test.sh installs kubernetes-client)")
    proc = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"kubectl kustomize {directory}: {proc.stderr}"
    return proc.stdout


def with_component(stack: str, component: str, parent: Path) -> Path:
    """An overlay of the user's own: the stack's overlay plus one component (relative paths)."""
    directory = parent / f"{stack}+{component}"
    directory.mkdir()
    up = Path(os.path.relpath(KUSTOMIZE_DIR, directory))
    (directory / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [str(up / "overlays" / stack)],
        "components": [str(up / "components" / component)],
    }))
    return directory


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every render, once for the module: overlay or "<stack>+<component>" -> YAML text."""
    parent = tmp_path_factory.mktemp("with components")
    texts = {name: kustomize(KUSTOMIZE_DIR / "overlays" / name) for name in OVERLAYS}
    for component, stacks in COMPONENTS.items():
        for stack in stacks:
            texts[f"{stack}+{component}"] = kustomize(with_component(stack, component, parent))
    return texts


@pytest.fixture(scope="module")
def rendered(renders: dict[str, str]) -> dict[str, Objects]:
    """The objects of every render: name -> objects."""
    return {name: [d for d in yaml.safe_load_all(text) if d] for name, text in renders.items()}


def one(objs: Objects, kind: str) -> dict[str, Any]:
    """The single object of a kind."""
    found = [o for o in objs if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def pod_spec(objs: Objects) -> dict[str, Any]:
    """The pod template spec of the Deployment."""
    return one(objs, "Deployment")["spec"]["template"]["spec"]


def server(objs: Objects) -> dict[str, Any]:
    """The server container of the Deployment."""
    (container,) = pod_spec(objs)["containers"]
    return container


def all_containers(objs: Objects) -> list[dict[str, Any]]:
    """The init containers and containers of the Deployment."""
    spec = pod_spec(objs)
    return [*spec.get("initContainers", []), *spec["containers"]]


def server_pod_labels(objs: Objects) -> dict[str, str]:
    """The pod template labels of a render's Deployment."""
    return one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    """The container's literal environment: name -> value."""
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def dockerfile_facts(stack: str) -> tuple[int, set[int]]:
    """The last USER (as a number) and every EXPOSEd port of the stack's image (its Dockerfile
    as the build assembles it)."""
    users, ports = [], set()
    for line in image_instructions(stack):
        words = line.split()
        if words and words[0].upper() == "USER":
            users.append(words[1].split(":")[0])
        elif words and words[0].upper() == "EXPOSE":
            ports |= {int(w.split("/")[0]) for w in words[1:]}
    assert users and users[-1].isdigit(), f"docker/{stack}/Dockerfile: USER must be a numeric uid"
    return int(users[-1]), ports


def settings_var_names() -> set[str]:
    """Every UPPER_SNAKE string literal in src/config/*.py: the variables the app reads."""
    names: set[str] = set()
    for path in (ROOT / "src" / "config").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names |= {n.value for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and isinstance(n.value, str)
                  and re.fullmatch(r"[A-Z][A-Z0-9_]+", n.value)}
    return names


def image_var_names() -> set[str]:
    """Every variable a script of the images reads: ${NAME} or $NAME in docker/**/*.sh, and
    os.environ.get("NAME") in pyhelpers/ and the download steps."""
    names: set[str] = set()
    for path in (ROOT / "docker").rglob("*.sh"):
        names |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", path.read_text(encoding="utf-8")))
    for path in [*(ROOT / "pyhelpers").glob("*.py"), *(ROOT / "docker").rglob("download/*.py")]:
        text = path.read_text(encoding="utf-8")
        names |= set(re.findall(r"environ\.get\(\"([A-Z][A-Z0-9_]*)\"", text))
    return names


def make_app() -> Any:
    """The served app (src.server) for a tool deployment, built without reading the environment."""
    import src.server

    return src.server.create_app(Settings(deploy_mode="tool", api_keys=("k",)), False)


def app_routes() -> set[tuple[str, str]]:
    """(method, path) of every route of the served app."""
    return {(m, r.path) for r in make_app().routes for m in getattr(r, "methods", None) or ()}


def test_every_overlay_and_component_is_rendered() -> None:
    """A new overlay or component cannot go untested: each directory has its entry here."""
    overlays = {p.name for p in (KUSTOMIZE_DIR / "overlays").iterdir() if p.is_dir()}
    components = {p.name for p in (KUSTOMIZE_DIR / "components").iterdir() if p.is_dir()}
    assert overlays == set(OVERLAYS)
    assert components == {*COMPONENTS, "weights-volume"}


def test_renders_validate_strictly_against_the_tested_kubernetes_version(
    renders: dict[str, str], tmp_path: Path
) -> None:
    """kubernetes-validate --strict, for the Kubernetes version scripts/test.sh names."""
    found = re.search(r'^readonly K8S_VERSION="([0-9.]+)"$',
                      (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8"), re.MULTILINE)
    assert found, "scripts/test.sh names no K8S_VERSION"
    validate = ROOT / ".venv" / "bin" / "kubernetes-validate"
    if not validate.is_file():
        pytest.skip("kubernetes-validate is not installed (scripts/test.sh installs it)")
    for name, text in renders.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    proc = subprocess.run([str(validate), "--quiet", "--strict", "-k", found.group(1),
                           *map(str, sorted(tmp_path.glob("*.yaml")))],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_renders_pass_checkov(renders: dict[str, str], tmp_path: Path) -> None:
    """checkov's Kubernetes policies pass on every render (suppressions carry their reason)."""
    if not CHECKOV.is_file():
        pytest.skip("checkov is not installed (scripts/test.sh lint installs it)")
    for name, text in renders.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    proc = subprocess.run([str(CHECKOV), "--skip-download", "--compact", "--quiet",
                           "--framework", "kubernetes", "-d", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_renders_its_own_objects(rendered: dict, overlay: str) -> None:
    """Each overlay holds its stack-prefixed objects, a Secret never, an HPA only for tool."""
    stack = OVERLAYS[overlay]
    kinds = sorted(o["kind"] for o in rendered[overlay])
    expected = ["Deployment", "NetworkPolicy", "PodDisruptionBudget", "Service"]
    expected += ["HorizontalPodAutoscaler"] if stack == "tool" else []
    expected += ["PersistentVolumeClaim"] if overlay.endswith("-volume") else []
    assert kinds == sorted(expected)
    assert all(o["metadata"]["name"].startswith(f"{stack}-") for o in rendered[overlay])


@pytest.mark.parametrize("stack", STACKS)
def test_every_selector_picks_exactly_this_stacks_pods(rendered: dict, stack: str) -> None:
    """Service, PDB, NetworkPolicy and spread selectors match these pods and no other stack's."""
    objs = rendered[stack]
    deploy = one(objs, "Deployment")
    labels = server_pod_labels(objs)
    spreads = deploy["spec"]["template"]["spec"]["topologySpreadConstraints"]
    selectors = [
        one(objs, "Service")["spec"]["selector"],
        deploy["spec"]["selector"]["matchLabels"],
        one(objs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        one(objs, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
        *(spread["labelSelector"]["matchLabels"] for spread in spreads),
    ]
    for selector in selectors:
        assert selector.items() <= labels.items()
        assert selector.get("app.kubernetes.io/instance") == stack
        for other in set(STACKS) - {stack}:
            other_labels = server_pod_labels(rendered[other])
            assert not selector.items() <= other_labels.items(), f"{stack} selects {other} pods"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_replicas_spread_over_nodes_required_and_zones_preferred(
    rendered: dict, overlay: str
) -> None:
    """One replica per node at most (DoNotSchedule), zones preferred, counted per ReplicaSet."""
    constraints = pod_spec(rendered[overlay])["topologySpreadConstraints"]
    spreads = {spread["topologyKey"]: spread for spread in constraints}
    assert set(spreads) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    assert spreads["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
    assert spreads["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "ScheduleAnyway"
    for spread in spreads.values():
        assert spread["maxSkew"] == 1
        # the revision's own pods only: a rollout's old pods never block its new ones
        assert spread["matchLabelKeys"] == ["pod-template-hash"]


@pytest.mark.parametrize("stack", STACKS)
def test_probes_use_the_apps_health_routes(rendered: dict, stack: str) -> None:
    """Startup and readiness ask /healthz, liveness /livez, and the app serves both with GET."""
    container = server(rendered[stack])
    paths = {p: container[p]["httpGet"]["path"]
             for p in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert paths == {"startupProbe": "/healthz", "readinessProbe": "/healthz",
                     "livenessProbe": "/livez"}
    assert {("GET", "/healthz"), ("GET", "/livez")} <= app_routes()


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
    pod_sc = pod_spec(objs)["securityContext"]
    assert env_of(container)["PORT"] == str(port["containerPort"])
    assert pod_sc["runAsUser"] == container["securityContext"]["runAsUser"] == pod_sc["fsGroup"]
    assert one(objs, "Service")["spec"]["ports"][0]["targetPort"] == port["name"]
    uid, exposed = dockerfile_facts(stack)
    assert port["containerPort"] in exposed
    assert pod_sc["runAsUser"] == uid


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_is_read_by_the_app_or_the_image(rendered: dict, overlay: str) -> None:
    """No variable the manifests set is ignored: the app, a script or a library reads it."""
    app_vars = settings_var_names()
    assert {"PORT", "TEXT_API_KEY_FILE", "SHUTDOWN_GRACE_S"} <= app_vars
    known = app_vars | image_var_names() | set(LIBRARY_VARS)
    for container in all_containers(rendered[overlay]):
        unknown = set(env_of(container)) - known
        assert not unknown, f"overlays/{overlay} {container['name']} sets {sorted(unknown)}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_mounted_files_never_values(rendered: dict, overlay: str) -> None:
    """TEXT_API_KEY_FILE (and HF_TOKEN_FILE) point into read-only Secret volumes; no secret
    variable is set, none comes from a Secret or ConfigMap reference, no Secret is rendered."""
    objs = rendered[overlay]
    secret_volumes = {v["name"]: v["secret"] for v in pod_spec(objs)["volumes"] if "secret" in v}
    files = [("TEXT_API_KEY_FILE", server(objs))]
    files += [("HF_TOKEN_FILE", c) for c in all_containers(objs) if "HF_TOKEN_FILE" in env_of(c)]
    for name, container in files:
        path = Path(env_of(container)[name])
        mounts = [m for m in container["volumeMounts"] if m["name"] in secret_volumes]
        assert any(path.parent == Path(m["mountPath"]) and m.get("readOnly") for m in mounts)
    for container in all_containers(objs):
        assert not {e["name"] for e in container.get("env", [])} & set(SECRET_VARS)
        refs = [e["valueFrom"] for e in container.get("env", []) if "valueFrom" in e]
        assert all(set(ref) == {"resourceFieldRef"} for ref in refs), refs
    assert "Secret" not in {o["kind"] for o in objs}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_containers_are_locked_down_with_writable_scratch(rendered: dict, overlay: str) -> None:
    """Non-root, read-only root, no escalation, no capabilities, pinned image, in every
    container; /tmp and /dev/shm are emptyDirs."""
    objs = rendered[overlay]
    pod = pod_spec(objs)
    assert pod["securityContext"]["runAsNonRoot"] and pod["automountServiceAccountToken"] is False
    for container in all_containers(objs):
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
        assert DIGEST.search(container["image"]), container["image"]
        assert container["image"] == server(objs)["image"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in server(objs)["volumeMounts"]}
    assert "emptyDir" in mounts["/tmp"]
    assert mounts["/dev/shm"]["emptyDir"]["medium"] == "Memory"
    assert env_of(server(objs))["HOME"] == "/tmp"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_memory_requested_is_the_limit(rendered: dict, overlay: str) -> None:
    """Every container requests the memory it may use: node pressure evicts it last."""
    for container in all_containers(rendered[overlay]):
        resources = container["resources"]
        assert resources["requests"]["memory"] == resources["limits"]["memory"], container["name"]


@pytest.mark.parametrize("stack", STACKS)
def test_gpus_only_for_gpu_stacks_which_serve_chat_alone(rendered: dict, stack: str) -> None:
    """vLLM and TRT request and limit one GPU count (vLLM: TENSOR_PARALLEL_SIZE) and serve
    DEPLOY_MODE=chat (the tool Deployment serves the classifier); tool has no GPU."""
    container = server(rendered[stack])
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    env = env_of(container)
    if stack not in GPU_STACKS:
        assert "nvidia.com/gpu" not in limits and "nvidia.com/gpu" not in requests
        assert "DEPLOY_MODE" not in env  # the tool image's own: tool
        return
    assert int(limits["nvidia.com/gpu"]) == int(requests["nvidia.com/gpu"]) >= 1
    assert env["DEPLOY_MODE"] == "chat"
    if stack == "vllm":
        assert env["TENSOR_PARALLEL_SIZE"] == str(limits["nvidia.com/gpu"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_timers_agree_with_the_images_own(rendered: dict, overlay: str) -> None:
    """Every timer of a start and a stop, from the one table (src/config/timers.py).

    Start: the startup probe's budget is WARMUP_MAX_WAIT (warmup.sh gives up when Kubernetes
    does), never less than the image's HEALTHCHECK give-up, and the progress deadline covers the
    image pull and that budget. Stop: preStop pause, then SIGTERM; the app drains
    (SHUTDOWN_GRACE_S, long enough for long streams on GPU stacks) and stops its engine
    (ENGINE_STOP_TIMEOUT) before the image's last-resort kill (SERVER_STOP_TIMEOUT, which
    load_timers checks or derives), which comes before the kubelet's
    (terminationGracePeriodSeconds).
    """
    stack = OVERLAYS[overlay]
    objs = rendered[overlay]
    deploy, container = one(objs, "Deployment"), server(objs)
    timers = load_timers(env_of(container), stack)
    probe = container["startupProbe"]
    budget = probe.get("initialDelaySeconds", 0) + \
        probe["periodSeconds"] * probe["failureThreshold"]
    assert timers.warmup_max_wait_s == budget
    assert budget >= HEALTHCHECKS[stack].give_up_s
    assert deploy["spec"]["progressDeadlineSeconds"] >= PULL_ALLOWANCE_S[stack] + budget

    pause = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    grace = deploy["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert pause + timers.server_stop_timeout_s < grace, \
        "the kubelet would kill before the image's own last resort"
    if stack in GPU_STACKS:
        assert timers.shutdown_grace_s >= LONG_STREAM_S


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rollouts_need_no_spare_gpu(rendered: dict, overlay: str) -> None:
    """GPU stacks replace a replica in place (no surge pod waiting for a GPU); tool surges.
    The surge-rollout component switches a GPU stack back to surging."""
    rolling = one(rendered[overlay], "Deployment")["spec"]["strategy"]["rollingUpdate"]
    if OVERLAYS[overlay] in GPU_STACKS:
        assert rolling == {"maxSurge": 0, "maxUnavailable": 1}
        switched = one(rendered[f"{OVERLAYS[overlay]}+surge-rollout"], "Deployment")
        assert switched["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1,
                                                                 "maxUnavailable": 0}
    else:
        assert rolling == {"maxSurge": 1, "maxUnavailable": 0}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_pod_that_is_not_ready_never_blocks_a_drain(rendered: dict, overlay: str) -> None:
    """The PDB lets drains take one ready replica at a time, and any unhealthy one."""
    pdb = one(rendered[overlay], "PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] == 1
    assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def required_node_terms(objs: Objects) -> list[dict[str, Any]]:
    """The required node-affinity terms of the Deployment's pods (none: [])."""
    affinity = pod_spec(objs).get("affinity", {}).get("nodeAffinity", {})
    return affinity.get("requiredDuringSchedulingIgnoredDuringExecution", {}).get(
        "nodeSelectorTerms", [])


def test_trt_runs_only_on_its_engines_architecture(rendered: dict) -> None:
    """trt requires one compute capability (the sm of its engine label); vllm and tool require
    none; gpu-product pins one GPU product instead."""
    from pyhelpers.model_ref import TRT_LABEL_RE

    for overlay in ("trt", "trt-volume"):
        (term,) = required_node_terms(rendered[overlay])
        rules = {e["key"]: e for e in term["matchExpressions"]}
        assert set(rules) == {"nvidia.com/gpu.compute.major", "nvidia.com/gpu.compute.minor"}
        assert all(r["operator"] == "In" and len(r["values"]) == 1 for r in rules.values())
        sm = "sm" + "".join(rules[f"nvidia.com/gpu.compute.{p}"]["values"][0]
                            for p in ("major", "minor"))
        assert TRT_LABEL_RE.fullmatch(f"{sm}_trt-llm-1.2.1_cuda12.9"), sm
    assert required_node_terms(rendered["vllm"]) == required_node_terms(rendered["tool"]) == []
    for stack in GPU_STACKS:
        (term,) = required_node_terms(rendered[f"{stack}+gpu-product"])
        (rule,) = term["matchExpressions"]
        assert rule["key"] == "nvidia.com/gpu.product" and rule["operator"] == "In"


def test_tool_threads_follow_its_cpu_request(rendered: dict) -> None:
    """OMP_NUM_THREADS is the tool container's CPU request (rounded up), not the node's cores."""
    container = server(rendered["tool"])
    (threads,) = [e for e in container["env"] if e["name"] == "OMP_NUM_THREADS"]
    ref = threads["valueFrom"]["resourceFieldRef"]
    assert ref == {"containerName": container["name"], "resource": "requests.cpu", "divisor": "1"}
    assert "cpu" in container["resources"]["requests"]


@pytest.mark.parametrize("stack", STACKS)
def test_optional_components_add_what_they_name(rendered: dict, stack: str) -> None:
    """priorityClassName, a ServiceAccount with the pull secret (its token never mounted), a
    NetworkPolicy admitting the gateway's namespace only; runtimeClassName for GPU stacks."""
    assert "priorityClassName" not in pod_spec(rendered[stack])
    assert pod_spec(rendered[f"{stack}+priority-class"])["priorityClassName"]
    objs = rendered[f"{stack}+service-account"]
    account = one(objs, "ServiceAccount")
    assert pod_spec(objs)["serviceAccountName"] == account["metadata"]["name"]
    assert account["imagePullSecrets"] == [{"name": "text-inference-registry"}]
    assert account["automountServiceAccountToken"] is False
    assert pod_spec(objs)["automountServiceAccountToken"] is False
    (rule,) = one(rendered[f"{stack}+gateway-only"], "NetworkPolicy")["spec"]["ingress"]
    (source,) = rule["from"]
    assert list(source) == ["namespaceSelector"]
    assert list(source["namespaceSelector"]["matchLabels"]) == ["kubernetes.io/metadata.name"]
    assert rule["ports"] == one(rendered[stack], "NetworkPolicy")["spec"]["ingress"][0]["ports"]
    if stack in GPU_STACKS:
        assert pod_spec(rendered[f"{stack}+runtime-class"])["runtimeClassName"]


@pytest.mark.parametrize("stack", GPU_STACKS)
def test_weights_volume_downloads_into_a_claim_the_server_reads_only(
    rendered: dict, stack: str
) -> None:
    """overlays/<stack>-volume: an init container runs main.sh --download-models (no API key,
    the server's DEPLOY_MODE, Hub access) into a ReadWriteMany claim named after the stack; the
    server mounts it read-only; together the mounts hold every model path of the image."""
    objs = rendered[f"{stack}-volume"]
    claim = one(objs, "PersistentVolumeClaim")
    assert claim["metadata"]["name"].startswith(f"{stack}-")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    pod = pod_spec(objs)
    (weights,) = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert weights["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    (init,) = pod["initContainers"]
    usage = (ROOT / "docker" / stack / "scripts" / "main.sh").read_text(encoding="utf-8")
    assert init["args"][0] == "/app/scripts/main.sh" and f" {init['args'][1]} " in usage
    assert "command" not in init  # tini, the image's entrypoint, stays PID 1
    env, served = env_of(init), env_of(server(objs))
    assert env["DEPLOY_MODE"] == served["DEPLOY_MODE"]
    assert "HF_HUB_OFFLINE" not in env and served["HF_HUB_OFFLINE"] == "1"
    defaults = Settings()
    model_dirs = [Path(defaults.chat_model_path), Path(defaults.tool_model_path),
                  Path(defaults.trt_engine_dir)]
    for container, read_only in ((init, False), (server(objs), True)):
        roots = [Path(m["mountPath"]) for m in container["volumeMounts"]
                 if m["name"] == weights["name"] and bool(m.get("readOnly")) == read_only]
        assert all(any(d.parent == r for r in roots) for d in model_dirs), roots
    hf_token = next(v for v in pod["volumes"] if v["name"] == "hf-token")
    assert hf_token["secret"]["optional"] is True  # public models need no token


def test_hpa_scales_the_tool_deployment_which_leaves_replicas_to_it(rendered: dict) -> None:
    """The tool HPA targets the prefixed Deployment, which sets no replica count of its own."""
    hpa = one(rendered["tool"], "HorizontalPodAutoscaler")
    deploy = one(rendered["tool"], "Deployment")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deploy["metadata"]["name"]
    assert "replicas" not in deploy["spec"]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


@pytest.mark.parametrize("stack", STACKS)
def test_prometheus_finds_metrics_by_annotations_or_a_service_monitor(
    rendered: dict, stack: str
) -> None:
    """The pods' scrape annotations name the API port and GET /metrics, which the app serves
    without a key by default; service-monitor selects this stack's Service alone, on the same
    port and path, and admits the scrape through a NetworkPolicy narrowed to a gateway."""
    objs = rendered[stack]
    annotations = one(objs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    (port,) = server(objs)["ports"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port["containerPort"])
    assert ("GET", annotations["prometheus.io/path"]) in app_routes()
    assert Settings().metrics_require_key is False
    assert "METRICS_REQUIRE_KEY" not in env_of(server(objs))

    monitored = rendered[f"{stack}+service-monitor"]
    monitor, service = one(monitored, "ServiceMonitor"), one(monitored, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["name"] == service["metadata"]["name"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert selector["app.kubernetes.io/instance"] == stack
    for other in set(STACKS) - {stack}:
        assert not selector.items() <= one(rendered[other], "Service")["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] == port["name"]
    assert endpoint["path"] == annotations["prometheus.io/path"]
    rules = one(monitored, "NetworkPolicy")["spec"]["ingress"]
    assert rules[0] == one(objs, "NetworkPolicy")["spec"]["ingress"][0]
    (source,) = rules[1]["from"]
    assert list(source["namespaceSelector"]["matchLabels"]) == ["kubernetes.io/metadata.name"]
    assert rules[1]["ports"] == rules[0]["ports"]


@pytest.mark.parametrize("stack", GPU_STACKS)
def test_in_flight_hpa_scales_its_stack_on_a_metric_the_app_serves(
    rendered: dict, stack: str
) -> None:
    """hpa-in-flight: an HPA on text_inference_requests_in_flight per pod, below the in-flight
    bound, targeting this stack's Deployment, which leaves the replica count to it."""
    from src import metrics

    objs = rendered[f"{stack}+hpa-in-flight"]
    hpa, deploy = one(objs, "HorizontalPodAutoscaler"), one(objs, "Deployment")
    assert hpa["metadata"]["name"] == hpa["spec"]["scaleTargetRef"]["name"] == \
        deploy["metadata"]["name"]
    assert hpa["metadata"]["labels"]["app.kubernetes.io/instance"] == stack
    assert "replicas" not in deploy["spec"]
    assert "replicas" in one(rendered[stack], "Deployment")["spec"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == metrics.IN_FLIGHT.describe()[0].name
    limit = float(env_of(server(objs)).get("MAX_CONCURRENT_CONNECTIONS",
                                           Settings().max_concurrent_connections))
    assert 0 < float(metric["pods"]["target"]["averageValue"]) < limit
