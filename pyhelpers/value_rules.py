"""The shapes of the values a build hands to Docker and the Hub, checked on the build host.

Standard library only: docker/common/download/validate.py loads this file by path. Each
`*_problem(value)` returns why the value is not of its shape (a phrase that follows the quoted
value), or None when it is; each `*_HELP` says what would be valid. Every pattern is ASCII-only
(re.ASCII).
- a Hub repo id follows huggingface_hub's validate_repo_id, with the owner required;
- a revision (CHAT_MODEL_REVISION …) is a branch, tag or commit name;
- HF_ENDPOINT is an http(s) URL without user, password or query;
- BASE_IMAGE follows Docker's image reference grammar.
"""

from __future__ import annotations

import re

# huggingface_hub's validate_repo_id: owner and name each 1-96 of [A-Za-z0-9_.-], starting and
# ending with a letter, digit or '_'; no '--' or '..'; not ending in '.git'.
REPO_PART_MAX_LEN = 96
REPO_PART_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?", re.ASCII)
REPO_ID_HELP = (
    "use owner/name with letters, digits, '-', '_' and '.', no '--' or '..', not ending in "
    f"'.git', owner and name each at most {REPO_PART_MAX_LEN} characters "
    "(example: Qwen/Qwen3-8B-AWQ)"
)
# A branch, tag or commit: git's ref-name rules, kept to the characters Hub names use.
REVISION_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+/-]{0,199}", re.ASCII)
REVISION_HELP = (
    "use a branch, tag or commit of letters, digits, '.', '_', '-', '+' and '/', without '..', "
    "'//' or a trailing '/', '.' or '.lock' (examples: main, v1.0, refs/pr/3, a 40-hex commit)"
)
ENDPOINT_RE = re.compile(
    r"https?://(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
    r"(?::(?P<port>[0-9]{1,5}))?(?:/[A-Za-z0-9._~%+/-]*)?",
    re.ASCII,
)
ENDPOINT_HELP = (
    "use an http(s) URL: scheme, host, optional port and path; no user, password, query or "
    "blanks (example: https://hub-mirror.internal:8080)"
)
# Docker's reference grammar (distribution/reference): [domain[:port]/]path[:tag][@digest].
_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_DOMAIN = (
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?"
)
IMAGE_REF_RE = re.compile(
    rf"(?P<name>(?:{_IMAGE_DOMAIN}/)?{_IMAGE_COMPONENT}(?:/{_IMAGE_COMPONENT})*)"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,})?",
    re.ASCII,
)
IMAGE_NAME_MAX_LEN = 255
IMAGE_REF_HELP = (
    "use [registry[:port]/]name[:tag][@digest], the name in lower case "
    "(example: nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04)"
)


def repo_id_problem(value: str) -> str | None:
    """Return why value is not a valid Hub repo id (owner/name), or None when it is valid."""
    owner, sep, name = value.partition("/")
    shape = "is not a valid Hugging Face repo id"
    if not (sep and REPO_PART_RE.fullmatch(owner) and REPO_PART_RE.fullmatch(name)):
        return shape
    if "--" in value or ".." in value:
        return f"{shape} (it holds '--' or '..')"
    if value.endswith(".git"):
        return f"{shape} (the Hub refuses a name ending in '.git')"
    for part, text in (("owner", owner), ("name", name)):
        if len(text) > REPO_PART_MAX_LEN:
            return f"{shape} (its {part} is {len(text)} characters long)"
    return None


def revision_problem(value: str) -> str | None:
    """Return why value is not a branch, tag or commit name, or None when it is one."""
    if (not REVISION_RE.fullmatch(value) or ".." in value or "//" in value
            or value.endswith(("/", ".", ".lock"))):
        return "is not a branch, tag or commit name"
    return None


def endpoint_problem(value: str) -> str | None:
    """Return why value is not an http(s) URL for HF_ENDPOINT, or None when it is one."""
    match = ENDPOINT_RE.fullmatch(value)
    if match is None or int(match.group("port") or 1) not in range(1, 65536):
        return "is not an http(s) URL"
    return None


def image_ref_problem(value: str) -> str | None:
    """Return why value is not a Docker image reference, or None when it is one."""
    match = IMAGE_REF_RE.fullmatch(value)
    if match is None:
        return "is not an image reference"
    if len(match.group("name")) > IMAGE_NAME_MAX_LEN:
        return f"has a name longer than {IMAGE_NAME_MAX_LEN} characters"
    return None
