"""pyhelpers.gpu against a fake pynvml module (no GPU here), and once against the real one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pyhelpers import gpu

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
# Error codes as nvidia-ml-py defines them.
NOT_SUPPORTED, NOT_FOUND, DRIVER_NOT_LOADED, LIBRARY_NOT_FOUND, UNKNOWN = 3, 6, 9, 12, 999


@dataclass
class FakeGpu:
    """One device as the fake NVML reports it."""

    name: str | bytes = "NVIDIA H100 80GB HBM3"
    cap: tuple[int, int] = (9, 0)
    memory_mib: int = 81559
    mig: int | None = 0  # current MIG mode; None: MIG not supported
    uuid: str = "GPU-0000"
    mig_uuids: list[str] = field(default_factory=list)


class FakeNvmlError(Exception):
    """Stands in for pynvml.NVMLError: carries the NVML status in .value."""

    def __init__(self, value: int) -> None:
        """Keep the status code."""
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        """Describe the status as pynvml does for unknown codes."""
        return f"NVML Error with code {self.value}"


def make_fake_pynvml(gpus: list[FakeGpu], fail: dict[str, int] | None = None) -> types.ModuleType:
    """Build a pynvml stand-in over `gpus`; `fail` maps a function name to the status it raises.

    Every call is recorded, in order, in the module's `calls` list.
    """
    fail = fail or {}
    mod = types.ModuleType("pynvml")
    mod.calls = []  # type: ignore[attr-defined]
    mod.NVMLError = FakeNvmlError  # type: ignore[attr-defined]
    mod.NVML_ERROR_NOT_SUPPORTED = NOT_SUPPORTED  # type: ignore[attr-defined]
    mod.NVML_ERROR_DRIVER_NOT_LOADED = DRIVER_NOT_LOADED  # type: ignore[attr-defined]
    mod.NVML_ERROR_LIBRARY_NOT_FOUND = LIBRARY_NOT_FOUND  # type: ignore[attr-defined]
    mod.NVML_DEVICE_MIG_ENABLE = 1  # type: ignore[attr-defined]

    def api(func: Callable[..., object]) -> Callable[..., object]:
        def wrapper(*args: object) -> object:
            mod.calls.append(func.__name__)  # type: ignore[attr-defined]
            if func.__name__ in fail:
                raise FakeNvmlError(fail[func.__name__])
            return func(*args)

        setattr(mod, func.__name__, wrapper)
        return wrapper

    @api
    def nvmlInit() -> None:
        pass

    @api
    def nvmlShutdown() -> None:
        pass

    @api
    def nvmlDeviceGetCount() -> int:
        return len(gpus)

    @api
    def nvmlDeviceGetHandleByIndex(i: int) -> FakeGpu:
        return gpus[i]

    @api
    def nvmlDeviceGetName(g: FakeGpu) -> str | bytes:
        return g.name

    @api
    def nvmlDeviceGetCudaComputeCapability(g: FakeGpu) -> tuple[int, int]:
        return g.cap

    @api
    def nvmlDeviceGetMemoryInfo(g: FakeGpu) -> types.SimpleNamespace:
        return types.SimpleNamespace(total=g.memory_mib * MIB, free=0, used=0)

    @api
    def nvmlDeviceGetMigMode(g: FakeGpu) -> tuple[int, int]:
        if g.mig is None:
            raise FakeNvmlError(NOT_SUPPORTED)
        return (g.mig, g.mig)

    @api
    def nvmlDeviceGetUUID(g: FakeGpu) -> str:
        return g.uuid

    @api
    def nvmlDeviceGetHandleByUUID(uuid: bytes) -> tuple[str, FakeGpu]:
        for g in gpus:
            if uuid.decode() in g.mig_uuids:
                return ("mig", g)
        raise FakeNvmlError(NOT_FOUND)

    @api
    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig: tuple[str, FakeGpu]) -> FakeGpu:
        return mig[1]

    return mod


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> Callable[..., types.ModuleType]:
    """A factory: fake_nvml(gpus, fail=None) puts a fake pynvml into sys.modules and returns it."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("LOG_LEVEL", raising=False)

    def install(gpus: list[FakeGpu], fail: dict[str, int] | None = None) -> types.ModuleType:
        mod = make_fake_pynvml(gpus, fail)
        monkeypatch.setitem(sys.modules, "pynvml", mod)
        return mod

    return install


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run gpu.main(argv); return (status, stdout, stderr)."""
    status = gpu.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_one_gpu_shell_format(fake_nvml: Callable[..., types.ModuleType],
                              capsys: pytest.CaptureFixture[str]) -> None:
    nvml = fake_nvml([FakeGpu()])
    assert run_main(capsys, "--format", "shell") == (0, (
        "GPU_COUNT=1\n"
        "GPU_NAME=NVIDIA H100 80GB HBM3\n"
        "GPU_COMPUTE_CAP=9.0\n"
        "GPU_MEMORY_MIB=81559\n"
        "GPU_MIG=0\n"), "")
    assert nvml.calls[0] == "nvmlInit" and nvml.calls[-1] == "nvmlShutdown"


def test_json_format_and_bytes_names(fake_nvml: Callable[..., types.ModuleType],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    fake_nvml([FakeGpu(name=b"NVIDIA A100-SXM4-80GB", cap=(8, 0), memory_mib=81920)])
    status, out, err = run_main(capsys, "--format", "json")
    assert (status, err) == (0, "")
    assert out.count("\n") == 1
    assert json.loads(out) == {"count": 1, "name": "NVIDIA A100-SXM4-80GB", "compute_cap": "8.0",
                               "memory_mib": 81920, "mig": False}


def test_shell_output_is_plain_lines_read_never_evaluated(
        fake_nvml: Callable[..., types.ModuleType], capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    name = f"Odd 'GPU' $(touch {marker}) `touch {marker}` \"x\"\tnew\nline"
    fake_nvml([FakeGpu(name=name)])
    _, out, _ = run_main(capsys)
    assert out.count("\n") == 5
    read = 'while IFS="=" read -r k v; do [[ $k != GPU_NAME ]] || printf %s "$v"; done'
    shown = subprocess.run(["bash", "-c", read], input=out, capture_output=True, text=True,
                           timeout=10, check=True).stdout
    assert shown == name.replace("\t", "?").replace("\n", "?")
    assert not marker.exists()


def test_count_and_first_gpu_facts(fake_nvml: Callable[..., types.ModuleType]) -> None:
    nvml = fake_nvml([FakeGpu(name="NVIDIA L40S", cap=(8, 9), memory_mib=46068),
                      FakeGpu(name="NVIDIA GeForce RTX 4090", cap=(8, 9), memory_mib=24564)])
    info = gpu.query(nvml, {})
    assert (info.count, info.name, info.compute_cap, info.memory_mib) == (2, "NVIDIA L40S", "8.9",
                                                                          46068)


@pytest.mark.parametrize(("mode", "want"), [(1, True), (0, False), (None, False)])
def test_mig_on_off_unsupported(fake_nvml: Callable[..., types.ModuleType], mode: int | None,
                                want: bool) -> None:
    nvml = fake_nvml([FakeGpu(mig=mode)])
    assert gpu.query(nvml, {}).mig is want


@pytest.mark.parametrize(("spec", "count", "first"), [
    ("1", 1, "B"),
    ("2,0", 2, "C"),
    ("0,7,1", 1, "A"),  # CUDA stops at the first entry that names no device
    ("-1", 0, None),
    ("", 0, None),
    ("GPU-bb", 1, "B"),  # a unique UUID prefix
    ("GPU-", 0, None),  # an ambiguous prefix names no device
    ("MIG-c1", 1, "C"),  # a MIG instance stands for its parent GPU
    ("MIG-zz", 0, None),
])
def test_cuda_visible_devices(fake_nvml: Callable[..., types.ModuleType], spec: str, count: int,
                              first: str | None) -> None:
    nvml = fake_nvml([FakeGpu(name="A", uuid="GPU-aa11"), FakeGpu(name="B", uuid="GPU-bb22"),
                      FakeGpu(name="C", uuid="GPU-cc33", mig_uuids=["MIG-c1"])])
    env = {"CUDA_VISIBLE_DEVICES": spec}
    if first is None:
        with pytest.raises(gpu.GpuQueryError, match="CUDA_VISIBLE_DEVICES hides them"):
            gpu.query(nvml, env)
    else:
        info = gpu.query(nvml, env)
        assert (info.count, info.name) == (count, first)
    assert nvml.calls[-1] == "nvmlShutdown"


@pytest.mark.parametrize(("fail", "message"), [
    ({"nvmlInit": LIBRARY_NOT_FOUND}, "no NVIDIA driver: the NVML shared library"),
    ({"nvmlInit": DRIVER_NOT_LOADED}, "the NVIDIA driver is not loaded"),
    ({"nvmlInit": UNKNOWN}, "NVML error: NVML Error with code 999"),
    ({"nvmlDeviceGetCudaComputeCapability": UNKNOWN}, "NVML error: NVML Error with code 999"),
])
def test_nvml_errors_are_one_line(fake_nvml: Callable[..., types.ModuleType],
                                  capsys: pytest.CaptureFixture[str], fail: dict[str, int],
                                  message: str) -> None:
    nvml = fake_nvml([FakeGpu()], fail)
    status, out, err = run_main(capsys)
    assert (status, out) == (1, "")
    assert err.startswith(f"[gpu] ✗ {message}")
    assert err.count("\n") == 1 and "Traceback" not in err
    if "nvmlInit" not in fail:
        assert nvml.calls[-1] == "nvmlShutdown"  # released after a failure mid-query


def test_old_binding_without_a_function_is_one_line(fake_nvml: Callable[..., types.ModuleType],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    nvml = fake_nvml([FakeGpu()])
    del nvml.nvmlDeviceGetCudaComputeCapability  # as in bindings from before CUDA 11
    status, out, err = run_main(capsys)
    assert (status, out) == (1, "")
    assert err == ("[gpu] ✗ the NVML binding lacks nvmlDeviceGetCudaComputeCapability (too old):"
                   " install a current nvidia-ml-py (pip install -U nvidia-ml-py)\n")
    assert nvml.calls[-1] == "nvmlShutdown"


def test_library_that_fails_to_load_is_one_line(fake_nvml: Callable[..., types.ModuleType],
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = fake_nvml([FakeGpu()])

    def broken() -> None:
        raise OSError("libnvidia-ml.so.1: wrong ELF class: ELFCLASS32")

    monkeypatch.setattr(nvml, "nvmlInit", broken)
    status, out, err = run_main(capsys)
    assert (status, out) == (1, "")
    assert err == ("[gpu] ✗ NVML could not be loaded:"
                   " libnvidia-ml.so.1: wrong ELF class: ELFCLASS32\n")


def test_no_gpu(fake_nvml: Callable[..., types.ModuleType],
                capsys: pytest.CaptureFixture[str]) -> None:
    fake_nvml([])
    assert run_main(capsys, "--format", "json") == (
        1, "", "[gpu] ✗ no GPU visible: NVML works but reports none\n")


def test_no_pynvml_module(monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml → ImportError
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    status, out, err = run_main(capsys)
    assert (status, out) == (1, "")
    assert err == ("[gpu] ✗ the NVML library for Python is not installed"
                   " (pip install nvidia-ml-py)\n")


def test_debug_shows_the_exception(fake_nvml: Callable[..., types.ModuleType],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvml([])
    monkeypatch.setenv("LOG_LEVEL", "debug")
    with pytest.raises(gpu.GpuQueryError):
        gpu.main([])


def test_real_nvml_without_driver_is_one_line() -> None:
    """The real nvidia-ml-py on this GPU-less host: status 1, one line, no traceback."""
    env = {k: v for k, v in os.environ.items() if k not in ("LOG_LEVEL", "CUDA_VISIBLE_DEVICES")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-m", "pyhelpers.gpu", "--format", "json"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode == 0:
        pytest.skip("this host has an NVIDIA GPU")
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.startswith("[gpu] ✗ ") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr


def test_bad_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        gpu.main(["--format", "xml"])
    assert exc.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err
