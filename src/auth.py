"""API-key checks: Bearer or X-API-Key headers, constant-time comparison against every key."""

from __future__ import annotations

import hmac
from collections.abc import Mapping


def presented_key(headers: Mapping[str, str]) -> str:
    """The key a request presents: `Authorization: Bearer …` first, else `X-API-Key`."""
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-api-key", "").strip()


def key_is_valid(presented: str, keys: tuple[str, ...]) -> bool:
    """True when the key matches one of the keys; compares against all of them, in constant time."""
    given = presented.encode("utf-8", "surrogateescape")
    matched = False
    for key in keys:
        # No early return: every key is compared, so timing does not tell which one matched.
        matched |= hmac.compare_digest(given, key.encode("utf-8"))
    return matched and bool(presented)
