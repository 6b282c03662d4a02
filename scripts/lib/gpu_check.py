"""The Python steps of scripts/gpu_check.sh (the GPU truth check) and its result table.

Usage: python3 scripts/lib/gpu_check.py STEP [ARGS]   (scripts/gpu_check.sh runs each step)
  model DIR                    make the tiny tool model in DIR, with its download manifest
  detect NVML_FACTS SMI_FACTS  report and compare the two detections gpu_check.sh ran
  presets STACK EXPLAIN        report what `main.sh --explain` (file EXPLAIN) says the GPU
                               presets of STACK set; check the ones every GPU gets
  cuda                         inside the vllm bootstrap: torch against the detected GPU, the
                               tool model on CUDA under TOOL_GPU_FRAC, one batch classified
  argv                         inside an engine stack's bootstrap: build_engine_argv
  serve APP_ROOT               the tool stack's main.sh in APP_ROOT serving TOOL_MODEL_PATH
                               (from the environment); one /v1/classify
  row CHECK EXPECTED SEEN pass|fail   add a row (gpu_check.sh's own failures)
  table                        print every row as a table; status 1 when one failed or none ran
Each step adds its rows to the file GPU_CHECK_ROWS (check, expected, seen, pass|fail; one a
line, tab-separated) and prints what it found on stdout. A step that cannot run prints one line
on stderr and exits 1; its failure then becomes a row.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
TEXTS = ("the film was great", "a terrible day", "this book is fine", "i love the weather",
         "not good service", "we hate the night", "an ok movie", "they were very happy")
# Every GPU gets these from the stacks' GPU presets (source "gpu preset" in --explain);
# the others depend on the GPU model or count (docker/<stack>/scripts/env/gpu.sh).
ALWAYS_PRESET = {
    "vllm": ("GPU_SM_ARCH", "TORCH_CUDA_ARCH_LIST", "KV_DTYPE", "MAX_NUM_SEQS",
             "MAX_NUM_BATCHED_TOKENS"),
    "trt": ("GPU_SM_ARCH", "TORCH_CUDA_ARCH_LIST", "GPU_SM"),
}
# The chat engine flags that must carry a bootstrap value, per engine: flag → variable.
ARGV_FLAGS = {
    "vllm": {"--gpu-memory-utilization": "CHAT_GPU_FRAC", "--kv-cache-dtype": "KV_DTYPE",
             "--max-num-seqs": "MAX_NUM_SEQS",
             "--max-num-batched-tokens": "MAX_NUM_BATCHED_TOKENS",
             "--tensor-parallel-size": "TENSOR_PARALLEL_SIZE"},
    "trt": {"--kv_cache_free_gpu_memory_fraction": "TRT_KV_FREE_GPU_FRAC",
            "--tp_size": "TENSOR_PARALLEL_SIZE"},
}
SERVE_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


class CheckError(Exception):
    """A step cannot run at all (a missing file, a missing package)."""


@dataclass(frozen=True)
class Row:
    """One line of the final table."""

    check: str
    expected: str
    seen: str
    ok: bool


@dataclass(frozen=True)
class Facts:
    """One detection's answer, as gpu_check.sh writes it (tab-separated, one line)."""

    source: str
    name: str
    arch: str = ""
    vram_gb: int = 0
    count: int = 0
    fp8: str = "no"

    @classmethod
    def read(cls, path: Path) -> Facts:
        """Parse a facts file: source, name, architecture, GiB, count, FP8 (yes/no); or, when
        no probe answered, "none" and the reasons (kept as the name)."""
        fields = path.read_text(encoding="utf-8").rstrip("\n").split("\t")
        if len(fields) == 2 and fields[0] == "none":
            return cls("none", fields[1])
        if len(fields) != 6 or not fields[3].isdigit() or not fields[4].isdigit():
            raise CheckError(f"{path}: not a facts line (6 tab-separated fields): {fields!r}")
        return cls(fields[0], fields[1], fields[2], int(fields[3]), int(fields[4]), fields[5])

    def describe(self) -> str:
        """One phrase: name, architecture, memory, count, FP8 and the probe that answered."""
        if self.source == "none":
            return f"no GPU found ({self.name})"
        return (f"{self.name}: {self.arch or 'no architecture'}, {self.vram_gb} GiB, "
                f"{self.count} GPU(s), FP8 {self.fp8} (from {self.source})")


def _rows_file() -> Path:
    """The file rows are added to (GPU_CHECK_ROWS)."""
    path = os.environ.get("GPU_CHECK_ROWS")
    if not path:
        raise CheckError("GPU_CHECK_ROWS is not set; run the steps through scripts/gpu_check.sh")
    return Path(path)


def record(*rows: Row) -> None:
    """Append rows to GPU_CHECK_ROWS (tabs and line breaks inside a field become spaces)."""
    with _rows_file().open("a", encoding="utf-8") as out:
        for row in rows:
            fields = [row.check, row.expected, row.seen, "pass" if row.ok else "fail"]
            out.write("\t".join(" ".join(f.split()) for f in fields) + "\n")


def read_rows(path: Path) -> list[Row]:
    """Read the rows back; a line that is not a row raises CheckError."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) != 4 or fields[3] not in ("pass", "fail"):
            raise CheckError(f"{path}: not a row: {line!r}")
        rows.append(Row(fields[0], fields[1], fields[2], fields[3] == "pass"))
    return rows


def format_table(rows: list[Row]) -> str:
    """The rows as a Markdown table (pasteable into the README), then a one-line verdict."""
    lines = ["| check | expected | seen | result |", "|---|---|---|---|"]
    for row in rows:
        cells = (row.check, row.expected, row.seen, "pass" if row.ok else "**FAIL**")
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    failed = sum(not r.ok for r in rows)
    verdict = (f"{len(rows) - failed} of {len(rows)} checks passed"
               if rows else "no check ran")
    return "\n".join(lines) + f"\n\n{verdict}\n"


def detect_rows(nvml: Facts, smi: Facts, env: Mapping[str, str]) -> list[Row]:
    """Check both detections: NVML answers first; nvidia-smi, NVML hidden, finds the same GPU.

    nvidia-smi lists every GPU of the driver, so the counts are compared only when
    CUDA_VISIBLE_DEVICES does not narrow what NVML sees.
    """
    first = Row("detection, NVML first", "from NVML: >= 1 GPU with an architecture and memory",
                nvml.describe(),
                nvml.source == "NVML" and nvml.count >= 1 and bool(nvml.arch) and nvml.vram_gb > 0)
    same = ((smi.name, smi.arch, smi.vram_gb) == (nvml.name, nvml.arch, nvml.vram_gb)
            and ("CUDA_VISIBLE_DEVICES" in env or smi.count == nvml.count))
    second = Row("detection, NVML hidden", "from nvidia-smi: the same GPU as NVML",
                 smi.describe(), smi.source == "nvidia-smi" and same)
    return [first, second]


def parse_explain(text: str) -> dict[str, tuple[str, str]]:
    """`main.sh --explain` lines ("NAME value (source)") → {NAME: (value, source)}."""
    out = {}
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        value, sep, source = rest.strip().rpartition(" (")
        if name and sep and source.endswith(")"):
            out[name] = (value.strip(), source[:-1])
    return out


def preset_rows(stack: str, explained: dict[str, tuple[str, str]]) -> list[Row]:
    """One row: the presets every GPU gets came from "gpu preset" (trt: GPU_SM = the arch)."""
    want = ALWAYS_PRESET[stack]
    wrong = [f"{n} ({explained.get(n, ('', 'absent'))[1]})" for n in want
             if explained.get(n, ("", ""))[1] != "gpu preset"]
    seen = f"not from it: {', '.join(wrong)}" if wrong else f"all {len(want)} from it"
    expected = f"gpu preset: {', '.join(want)}"
    ok = not wrong
    if stack == "trt":
        sm, arch = explained.get("GPU_SM", ("",))[0], explained.get("GPU_SM_ARCH", ("",))[0]
        expected += " (GPU_SM = GPU_SM_ARCH)"
        seen += f"; GPU_SM {sm or '<unset>'}, GPU_SM_ARCH {arch or '<unset>'}"
        ok = ok and bool(sm) and sm == arch
    return [Row(f"{stack} GPU presets", expected, seen, ok)]


def argv_rows(engine: str, argv: list[str], env: Mapping[str, str]) -> list[Row]:
    """One row: each flag of ARGV_FLAGS carries the value the bootstrap set."""
    wrong = []
    for flag, var in ARGV_FLAGS[engine].items():
        value = argv[argv.index(flag) + 1] if flag in argv[:-1] else None
        if not _same(value, env.get(var)):
            wrong.append(f"{flag} {value} (want {var}={env.get(var)})")
    expected = ", ".join(f"{flag} ${var}" for flag, var in ARGV_FLAGS[engine].items())
    seen = "; ".join(wrong) if wrong else "all as set"
    return [Row(f"{engine} engine argv", expected, seen, not wrong)]


def _same(value: str | None, want: str | None) -> bool:
    """Whether a flag's value is the variable's: as numbers when both are (0.7 = 0.70)."""
    if value is None or want is None:
        return False
    try:
        return float(value) == float(want)
    except ValueError:
        return value == want


def _settings() -> Any:
    """The app's settings from this environment (a bootstrap's); no key is needed to read them."""
    from src.config.settings import load_settings

    return load_settings({**os.environ, "TEXT_API_KEY": os.environ.get("TEXT_API_KEY") or "unused"})


def step_model(target: Path) -> None:
    """Make the tiny classifier in target with a download manifest, as a build would bake it."""
    from tiny_model import make_tiny_model

    from pyhelpers.manifest import build_manifest, list_files, write_manifest

    make_tiny_model(target)
    write_manifest(target, build_manifest(target, list_files(target),
                                          {"repo_id": "gpu-check/tiny", "revision": "main"}))
    print(f"tiny tool model: {target}")


def step_detect(nvml_file: Path, smi_file: Path) -> None:
    """Print both detections and record their rows."""
    nvml, smi = Facts.read(nvml_file), Facts.read(smi_file)
    print(f"detection with NVML:           {nvml.describe()}")
    print(f"detection with NVML hidden:    {smi.describe()}")
    record(*detect_rows(nvml, smi, os.environ))


def step_presets(stack: str, explain_file: Path) -> None:
    """Print the settings the stack's GPU presets set (with their source) and record the row."""
    explained = parse_explain(explain_file.read_text(encoding="utf-8"))
    if not explained:
        raise CheckError(f"{explain_file}: no `main.sh --explain` lines in it")
    print(f"{stack}: set by the GPU presets")
    for name, (value, source) in explained.items():
        if source == "gpu preset":
            print(f"  {name:<28} {value:<44} ({source})")
    record(*preset_rows(stack, explained))


def step_argv() -> None:
    """Print build_engine_argv for the bootstrapped environment and record the row."""
    from src.engines.chat import build_engine_argv

    settings = _settings()
    argv = build_engine_argv(settings)
    print(f"{settings.engine}: {shlex.join(argv)}")
    record(*argv_rows(settings.engine, argv, os.environ))


def step_cuda() -> None:
    """torch against the detection and the presets, then the tool model on CUDA."""
    import torch

    if not torch.cuda.is_available():
        record(Row("torch sees the GPU", "torch.cuda.is_available()",
                   f"no CUDA device (torch {torch.__version__}, CUDA {torch.version.cuda})", False))
        print("torch sees no CUDA device: the tool model was not loaded")
        return
    major, minor = torch.cuda.get_device_capability(0)
    arch, kv = f"sm{major}{minor}", "fp8" if (major, minor) >= (8, 9) else "auto"
    env = os.environ
    device = (f"{torch.cuda.get_device_name(0)}, compute capability {major}.{minor} "
              f"(torch {torch.__version__}, CUDA {torch.version.cuda})")
    print(f"torch sees {device}")
    record(
        Row("torch sees the GPU", "torch.cuda.is_available()", device, True),
        Row("architecture, detection vs torch", f"{arch} (torch)", env.get("GPU_SM_ARCH", ""),
            env.get("GPU_SM_ARCH") == arch),
        Row("TORCH_CUDA_ARCH_LIST", f"{major}.{minor} (torch)", env.get("TORCH_CUDA_ARCH_LIST", ""),
            env.get("TORCH_CUDA_ARCH_LIST") == f"{major}.{minor}"),
        Row("KV_DTYPE (vllm)", f"{kv} (FP8 from compute capability 8.9)", env.get("KV_DTYPE", ""),
            env.get("KV_DTYPE") == kv),
    )
    record(*tool_on_cuda(torch))


def tool_on_cuda(torch: Any) -> list[Row]:
    """Load the tool model through ToolEngine under TOOL_GPU_FRAC; classify one batch.

    The fraction is honoured when what torch holds stays under it and an allocation that would
    take the process over it is refused.
    """
    from src.engines.tool import ToolEngine

    cuda = torch.cuda
    s = _settings()
    frac = s.tool_gpu_frac
    if frac is None:
        return [Row("TOOL_GPU_FRAC honoured", "a fraction from the bootstrap",
                    "TOOL_GPU_FRAC unset", False)]
    engine = ToolEngine(s.tool_model_path, s.tool_max_batch, s.tool_batch_wait_ms, frac)
    engine.load()
    free, total = cuda.mem_get_info(0)
    held, limit = cuda.memory_reserved(0), int(frac * total)
    over = limit - held + 256 * MIB
    try:
        block = torch.empty(over, dtype=torch.uint8, device="cuda")
    except cuda.OutOfMemoryError:
        refused = True
    else:
        refused = False
        del block
        cuda.empty_cache()
    print(f"tool model on CUDA: torch holds {held / MIB:.0f} MiB; TOOL_GPU_FRAC={frac} of "
          f"{total / MIB:.0f} MiB = {limit / MIB:.0f} MiB; the device has "
          f"{(total - free) / MIB:.0f} MiB in use (all processes, CUDA contexts included)")
    results = asyncio.run(_classify(engine))
    labels = {r["label"] for r in results}
    print(f"tool model on CUDA: {len(results)} texts in {engine.forward_passes} forward pass(es): "
          f"{sorted(labels)}")
    return [
        Row("TOOL_GPU_FRAC honoured", f"torch holds <= {frac} x {total / MIB:.0f} MiB; an "
            "allocation ending 256 MiB past that is refused",
            f"holds {held / MIB:.0f} MiB; {over / MIB:.0f} MiB more "
            f"{'refused' if refused else 'ALLOWED'}", held <= limit and refused),
        Row("tool model on CUDA classifies a batch",
            f"{len(TEXTS)} texts, 1 forward pass, labels of the model, weights on the GPU",
            f"{len(results)} results, {engine.forward_passes} pass(es), "
            f"{cuda.memory_allocated(0) / MIB:.1f} MiB allocated",
            len(results) == len(TEXTS) and engine.forward_passes == 1
            and labels <= set(engine.labels) and cuda.memory_allocated(0) > 0),
    ]


async def _classify(engine: Any) -> list[dict[str, Any]]:
    """Run the engine's batcher for one classify call of TEXTS."""
    engine.start()
    try:
        return list(await asyncio.wait_for(engine.classify(list(TEXTS)), 60))
    finally:
        await engine.stop()


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_row(app_root: Path, device: str) -> Row:
    """Start the tool stack's main.sh (uvicorn through server.sh), send one /v1/classify, stop.

    The model must be reported loaded on `device` in the server's log.
    """
    import httpx

    key, port = secrets.token_urlsafe(24), _free_port()
    env = {**os.environ, "APP_ROOT": str(app_root), "DEPLOY_MODE": "tool", "TEXT_API_KEY": key,
           "HOST": "127.0.0.1", "PORT": str(port), "LOG_FORMAT": "text"}
    url = f"http://127.0.0.1:{port}"
    expected = f"200 from /v1/classify of the served tool stack, model on {device}"
    with tempfile.TemporaryFile("w+", encoding="utf-8") as log:
        proc = subprocess.Popen([str(app_root / "scripts" / "main.sh")], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            seen = _classify_when_ready(httpx, url, key, proc)
        finally:
            status = _stop(proc)
        log.seek(0)
        text = log.read()
    loaded = f"tool model loaded on {device}" in text
    print(f"served: {seen}; the server ended with status {status}")
    if not seen.startswith("200") or not loaded:
        print("the server's output, last lines:\n  " + "\n  ".join(text.splitlines()[-15:]))
    on = next((w for w in ("cuda", "cpu") if f"tool model loaded on {w}" in text), "?")
    return Row("tool stack serves /v1/classify", expected, f"{seen}, model on {on}",
               seen.startswith("200") and loaded)


def _classify_when_ready(httpx: Any, url: str, key: str, proc: subprocess.Popen[bytes]) -> str:
    """Wait for /healthz to answer 200, then classify two texts; describe the answer."""
    deadline = time.monotonic() + SERVE_TIMEOUT_S
    with httpx.Client(timeout=10.0) as client:
        while True:
            if proc.poll() is not None:
                return f"the server ended first (status {proc.returncode})"
            if time.monotonic() > deadline:
                return f"/healthz not 200 within {SERVE_TIMEOUT_S:.0f} s"
            try:
                if client.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:  # not listening yet
                pass
            time.sleep(0.2)
        res = client.post(f"{url}/v1/classify", json={"input": list(TEXTS[:2])},
                          headers={"Authorization": f"Bearer {key}"})
    if res.status_code != 200:
        return f"{res.status_code}: {res.text[:120]}"
    data = res.json().get("data", [])
    return f"200, {len(data)} results ({', '.join(str(d.get('label')) for d in data)})"


def _stop(proc: subprocess.Popen[bytes]) -> int:
    """Stop main.sh as `docker stop` does (SIGTERM to it alone; it stops the server); after
    STOP_TIMEOUT_S, SIGKILL to its whole process group. Returns its status."""
    proc.terminate()
    try:
        return proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()


def step_serve(app_root: Path) -> None:
    """Record the row of the served tool stack (the model must load on CUDA)."""
    record(serve_row(app_root, "cuda"))


def step_table() -> int:
    """Print the table of every row; 0 only when there are rows and all passed."""
    rows = read_rows(_rows_file())
    sys.stdout.write(format_table(rows))
    return 0 if rows and all(r.ok for r in rows) else 1


def main(argv: list[str] | None = None) -> int:
    """CLI: run one step; a step that cannot run prints one line and exits 1."""
    parser = argparse.ArgumentParser(prog="gpu_check.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    sub.add_parser("model").add_argument("dir", type=Path)
    detect = sub.add_parser("detect")
    detect.add_argument("nvml", type=Path)
    detect.add_argument("smi", type=Path)
    presets = sub.add_parser("presets")
    presets.add_argument("stack", choices=sorted(ALWAYS_PRESET))
    presets.add_argument("explain", type=Path)
    sub.add_parser("cuda")
    sub.add_parser("argv")
    sub.add_parser("serve").add_argument("app_root", type=Path)
    row = sub.add_parser("row")
    for name in ("check", "expected", "seen"):
        row.add_argument(name)
    row.add_argument("result", choices=("pass", "fail"))
    sub.add_parser("table")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(ROOT)]
    try:
        if args.step == "table":
            return step_table()
        {
            "model": lambda: step_model(args.dir),
            "detect": lambda: step_detect(args.nvml, args.smi),
            "presets": lambda: step_presets(args.stack, args.explain),
            "cuda": step_cuda,
            "argv": step_argv,
            "serve": lambda: step_serve(args.app_root),
            "row": lambda: record(Row(args.check, args.expected, args.seen, args.result == "pass")),
        }[args.step]()
    except (CheckError, OSError, ValueError, ImportError, RuntimeError) as exc:
        if os.environ.get("LOG_LEVEL", "").lower() == "debug":
            raise
        print(f"[gpu-check] ✗ {args.step}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
