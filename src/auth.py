"""API-key checks from the raw request headers: Bearer or X-API-Key, constant-time comparison."""

from __future__ import annotations

import hmac
from collections.abc import Iterable


def encoded_keys(keys: Iterable[str]) -> tuple[bytes, ...]:
    """The accepted keys as the bytes a header carries (start-up made sure they are ASCII)."""
    return tuple(key.encode("ascii") for key in keys)


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The key a request presents: `Authorization: Bearer …` first, else `X-API-Key`.

    headers: the ASGI scope's (lower-case name, value) pairs.
    """
    bearer = api_key = b""
    for name, value in headers:
        if name == b"authorization" and not bearer:
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer":
                bearer = token.strip()
        elif name == b"x-api-key" and not api_key:
            api_key = value.strip()
    return bearer or api_key


def key_is_valid(presented: bytes, keys: tuple[bytes, ...]) -> bool:
    """True when the key matches one of the keys; compares against all of them, in constant time."""
    matched = False
    for key in keys:
        # No early return: every key is compared, so timing does not tell which one matched.
        matched |= hmac.compare_digest(presented, key)
    return matched and bool(presented)
