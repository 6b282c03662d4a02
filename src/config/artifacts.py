"""The model and engine directories the deploy mode serves: there, complete, as downloaded.

The build's download step writes a manifest into every directory it bakes (and
`main.sh --download-models` into every directory of a volume), so a missing one is an error,
except in a directory of the user's own (its variable given to the container, not the image's
value): a warning, since its files cannot be checked. Sizes are compared, not checksums: the
check takes milliseconds at every start.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pyhelpers.manifest import MANIFEST_NAME, ManifestError, verify_manifest
from src.config.explain import image_values
from src.config.parse import get
from src.config.settings import Settings


def needed(settings: Settings, stack: str) -> list[tuple[str, str, str]]:
    """(label, variable, directory) of what the deploy mode serves."""
    found = []
    if settings.serves_tool:
        found.append(("tool model", "TOOL_MODEL_PATH", settings.tool_model_path))
    if settings.serves_chat:
        found.append(("chat model", "CHAT_MODEL_PATH", settings.chat_model_path))
        if stack == "trt":
            found.append(("TensorRT-LLM engine", "TRT_ENGINE_DIR", settings.trt_engine_dir))
    return found


def check_dir(env: Mapping[str, str], label: str, var: str, directory: str) -> tuple[str, str]:
    """("error" or "warning", message) for a directory that fails; ("", "") when it passes."""
    path = Path(directory)
    if not path.is_dir():
        return "error", (
            f"{label} directory {var}='{directory}' does not exist; the image was built without "
            "it (rebuild with the model set), or, for an image built with BAKE_MODELS=0, mount "
            "there the volume that main.sh --download-models filled")
    partial = next(path.rglob("*.incomplete"), None)
    if partial is not None:
        return "error", (
            f"{label} in {directory} holds a half-finished download "
            f"({partial.relative_to(path)}); run main.sh --download-models again to finish it "
            "(a baked image: rebuild it)")
    if not (path / MANIFEST_NAME).is_file():
        if get(env, var) and image_values(env).get(var) != get(env, var):
            return "warning", (f"{label} in {directory} ({var}, set by you) has no download "
                               "manifest; its files cannot be checked")
        return "error", (
            f"{label} in {directory} has no download manifest ({MANIFEST_NAME}), which the "
            "build writes with every baked download and main.sh --download-models with every "
            "download into a volume: rebuild the image, or fill the volume with main.sh "
            f"--download-models (to serve a directory of your own, set {var} to it)")
    try:
        verify_manifest(path)
    except ManifestError as exc:
        return "error", f"{label} in {directory} does not match its download manifest: {exc}"
    return "", ""
