#!/usr/bin/env python3
"""Benchmark pyhelpers.hub.download_snapshot against plain huggingface_hub.snapshot_download.

Usage: PYTHONPATH=. .venv/bin/python scripts/bench/download.py [--mib 200] [--runs 5]
Publishes a fixture repo (4 LFS files, --mib MiB in all) to an Olah mirror in a temp dir,
downloads it with each function --runs times, interleaved (the side that goes first alternates
from round to round), into fresh dirs, prints the median times and the throughput ratio
(target: >= 0.95), then deletes everything it made.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_hub_mirror() -> types.ModuleType:
    """scripts/lib/hub_mirror.py, imported by path."""
    spec = importlib.util.spec_from_file_location("hub_mirror", ROOT / "scripts/lib/hub_mirror.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    hub_mirror = load_hub_mirror()
    work = Path(tempfile.mkdtemp(prefix="bench-download-"))
    try:
        src = work / "src"
        src.mkdir()
        part = args.mib * 2**20 // 4
        for i in range(4):
            (src / f"model-{i}.safetensors").write_bytes(os.urandom(part))
        (src / "config.json").write_text("{}")
        hub_mirror.publish_dir(work / "mirrors", "bench/model", src)
        shutil.rmtree(src)
        with hub_mirror.MirrorServer(work / "mirrors") as server:
            os.environ["HF_ENDPOINT"] = server.url
            os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
            from huggingface_hub import snapshot_download

            from pyhelpers.hub import download_snapshot

            timings: dict[str, list[float]] = {"plain": [], "ours": []}
            for run in range(args.runs):
                # Alternate which side goes first, so neither always meets a warm (or cold) mirror.
                order = ("plain", "ours") if run % 2 == 0 else ("ours", "plain")
                for name in order:
                    out = work / f"{name}-{run}"
                    start = time.perf_counter()
                    if name == "plain":
                        snapshot_download("bench/model", local_dir=out, endpoint=server.url)
                    else:
                        download_snapshot("bench/model", out, log_prefix="[bench]")
                    timings[name].append(time.perf_counter() - start)
                    shutil.rmtree(out)
        plain, ours = (statistics.median(timings[k]) for k in ("plain", "ours"))
        print(f"fixture: {args.mib} MiB in 5 files, {args.runs} interleaved runs each, "
              "alternating which goes first")
        print(f"plain snapshot_download: median {plain:.2f}s ({args.mib / plain:.0f} MiB/s)")
        print(f"download_snapshot:       median {ours:.2f}s ({args.mib / ours:.0f} MiB/s)")
        print(f"throughput ratio (ours / plain): {plain / ours:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
