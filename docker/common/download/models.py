#!/usr/bin/env python3
"""Download every model a stack serves with the stack's own entry points, in order.

The build's models stage runs it to bake the models into the image; `main.sh --download-models`
runs the same steps to fill a mounted directory (an image built with BAKE_MODELS=0), so both get
the same files, revisions and manifests. Each step is an entry point run as its own process with
this Python; the first failure ends the run with its status (its own one-line message says why).

Usage: models.py STACK [DOWNLOAD_DIR]
  STACK         tool, vllm or trt
  DOWNLOAD_DIR  the stack's download/ directory (default: download/ two levels above this file,
                which is where it is in the models stage's /build and in the image's /app)
Environment:
  DEPLOY_CHAT, DEPLOY_TOOL  0 leaves that model out (default 1: both, as the build does)
  CHAT_MODEL (vllm), TRT_ENGINE_REPO (trt)  empty: no chat model
  and everything the entry points read (docker/common/README.md)
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Per stack: the variable that names its chat model, and the entry points that fetch it.
CHAT_STEPS = {
    "tool": ("", ()),
    "vllm": ("CHAT_MODEL", ("chat.py",)),
    "trt": ("TRT_ENGINE_REPO", ("model.py", "engine.py")),
}
TOOL_STEP = HERE / "tool.py"


def steps(stack: str, download_dir: Path) -> list[Path]:
    """The entry points to run for `stack`, in order, as the environment configures it."""
    variable, scripts = CHAT_STEPS[stack]
    planned = []
    if os.environ.get("DEPLOY_CHAT", "1") != "0" and os.environ.get(variable, "").strip():
        planned += [download_dir / name for name in scripts]
    if os.environ.get("DEPLOY_TOOL", "1") != "0":
        planned.append(TOOL_STEP)  # it skips, saying so, when TOOL_MODEL is empty
    return planned


def main(argv: list[str] | None = None) -> int:
    """Run the stack's download steps; the status of the first that fails, else 0."""
    parser = argparse.ArgumentParser(prog="models.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack", choices=sorted(CHAT_STEPS))
    parser.add_argument("download_dir", nargs="?", type=Path, default=HERE.parents[1] / "download")
    args = parser.parse_args(argv)
    for script in steps(args.stack, args.download_dir):
        status = subprocess.run([sys.executable, str(script)], check=False).returncode
        if status != 0:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
