"""GPU facts from NVML (the nvidia-ml-py package, module pynvml), for docker/common/scripts/gpu.sh.

Usage: python3 -m pyhelpers.gpu [--format shell|json]
  Print the number of GPUs this process can see (CUDA_VISIBLE_DEVICES is respected) and, for
  GPU 0, its name, compute capability, total memory in MiB and whether MIG is enabled.
    shell (default)  GPU_COUNT=1 GPU_NAME=… GPU_COMPUTE_CAP=9.0 GPU_MEMORY_MIB=81559 GPU_MIG=0,
                     one KEY=value per line, for the shell to read (never to evaluate)
    json             {"count": 1, "name": "…", "compute_cap": "9.0", "memory_mib": 81559,
                      "mig": false}
  No NVML library, no driver or no visible GPU: status 1 and one line on stderr saying which
  (a traceback only with LOG_LEVEL=debug).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

from pyhelpers.logs import debug_enabled


class GpuQueryError(Exception):
    """NVML could not be asked, or it reports no GPU visible to this process."""


@dataclass(frozen=True)
class GpuInfo:
    """What the layer needs to know about the visible GPUs (facts of GPU 0)."""

    count: int
    name: str
    compute_cap: str
    memory_mib: int
    mig: bool


def load_nvml() -> ModuleType:
    """Import pynvml, or raise GpuQueryError saying which package is missing."""
    try:
        return importlib.import_module("pynvml")
    except ImportError as exc:
        raise GpuQueryError(
            "the NVML library for Python is not installed (pip install nvidia-ml-py)"
        ) from exc


def _text(value: str | bytes) -> str:
    """Return an NVML string as str (older bindings return bytes)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _nvml_reason(nvml: ModuleType, exc: Exception) -> str:
    """Describe an NVML error in words a user can act on."""
    code = getattr(exc, "value", None)
    if code == getattr(nvml, "NVML_ERROR_LIBRARY_NOT_FOUND", object()):
        return "no NVIDIA driver: the NVML shared library (libnvidia-ml.so.1) was not found"
    if code == getattr(nvml, "NVML_ERROR_DRIVER_NOT_LOADED", object()):
        return "the NVIDIA driver is not loaded"
    return f"NVML error: {exc}"


def visible_handles(nvml: ModuleType, env: dict[str, str]) -> list[Any]:
    """Return the device handles CUDA would use, in CUDA_VISIBLE_DEVICES order.

    As CUDA does, the list stops at the first entry that names no device: an index out of
    range, -1, or an unknown UUID. GPU-… entries match a unique UUID prefix; a MIG-… entry
    stands for its parent GPU.
    """
    count = nvml.nvmlDeviceGetCount()
    handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    spec = env.get("CUDA_VISIBLE_DEVICES")
    if spec is None:
        return handles
    chosen: list[Any] = []
    for entry in (e.strip() for e in spec.split(",")):
        handle = None
        if entry.isdigit() and int(entry) < count:
            handle = handles[int(entry)]
        elif entry.startswith("GPU-"):
            matches = [h for h in handles if _text(nvml.nvmlDeviceGetUUID(h)).startswith(entry)]
            handle = matches[0] if len(matches) == 1 else None
        elif entry.startswith("MIG-"):
            try:
                mig = nvml.nvmlDeviceGetHandleByUUID(entry.encode())
                handle = nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig)
            except nvml.NVMLError:
                handle = None
        if handle is None or handle in chosen:
            break
        chosen.append(handle)
    return chosen


def _mig_enabled(nvml: ModuleType, handle: Any) -> bool:
    """Return True when MIG mode is currently enabled (False where MIG is not supported)."""
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except nvml.NVMLError:
        return False
    return current == nvml.NVML_DEVICE_MIG_ENABLE


def _binding_reason(exc: AttributeError | OSError) -> str:
    """Describe a binding that lacks a function, or a library that fails to load."""
    if isinstance(exc, AttributeError):
        missing = getattr(exc, "name", None) or exc
        return (f"the NVML binding lacks {missing} (too old): "
                "install a current nvidia-ml-py (pip install -U nvidia-ml-py)")
    return f"NVML could not be loaded: {exc}"


def query(nvml: ModuleType, env: dict[str, str]) -> GpuInfo:
    """Ask NVML for the visible GPUs; raise GpuQueryError when it cannot answer or sees none."""
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        raise GpuQueryError(_nvml_reason(nvml, exc)) from exc
    except (AttributeError, OSError) as exc:
        raise GpuQueryError(_binding_reason(exc)) from exc
    try:
        handles = visible_handles(nvml, env)
        if not handles:
            hidden = " (CUDA_VISIBLE_DEVICES hides them)" if "CUDA_VISIBLE_DEVICES" in env else ""
            raise GpuQueryError(f"no GPU visible: NVML works but reports none{hidden}")
        first = handles[0]
        major, minor = nvml.nvmlDeviceGetCudaComputeCapability(first)
        return GpuInfo(
            count=len(handles),
            name=_text(nvml.nvmlDeviceGetName(first)).strip(),
            compute_cap=f"{major}.{minor}",
            memory_mib=int(nvml.nvmlDeviceGetMemoryInfo(first).total) // (1024 * 1024),
            mig=_mig_enabled(nvml, first),
        )
    except nvml.NVMLError as exc:
        raise GpuQueryError(_nvml_reason(nvml, exc)) from exc
    except (AttributeError, OSError) as exc:
        raise GpuQueryError(_binding_reason(exc)) from exc
    finally:
        # A failed shutdown leaves nothing to release; the answer (or first error) counts.
        with contextlib.suppress(nvml.NVMLError):
            nvml.nvmlShutdown()


def format_shell(info: GpuInfo) -> str:
    """Render GpuInfo as KEY=value lines for the shell to read (never to evaluate): a value is
    one line, its control characters shown as '?'."""
    values = {
        "GPU_COUNT": str(info.count),
        "GPU_NAME": info.name,
        "GPU_COMPUTE_CAP": info.compute_cap,
        "GPU_MEMORY_MIB": str(info.memory_mib),
        "GPU_MIG": "1" if info.mig else "0",
    }
    return "".join(f"{key}={''.join(c if c.isprintable() else '?' for c in value)}\n"
                   for key, value in values.items())


def format_json(info: GpuInfo) -> str:
    """Render GpuInfo as one JSON object on one line."""
    return json.dumps(asdict(info)) + "\n"


def main(argv: list[str] | None = None) -> int:
    """CLI: print the GPU facts; status 1 with one line on stderr when there are none."""
    parser = argparse.ArgumentParser(prog="python3 -m pyhelpers.gpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", choices=("shell", "json"), default="shell")
    args = parser.parse_args(argv)
    try:
        info = query(load_nvml(), dict(os.environ))
    except GpuQueryError as exc:
        if debug_enabled():
            raise
        print(f"[gpu] ✗ {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(format_shell(info) if args.format == "shell" else format_json(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
