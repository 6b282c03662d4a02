"""Readers of one environment variable each: the value, or a SettingsError naming the variable.

Every module of src/config reads the environment through these, so a rule (what a number, a
switch or a word may look like) is written once. Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


class SettingsError(ValueError):
    """An environment variable holds a value the app cannot run with."""


def get(env: Mapping[str, str], name: str) -> str:
    """The stripped value of a variable; empty when unset."""
    return env.get(name, "").strip()


def choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    """A value from a fixed set of choices."""
    return optional_choice(env, name, choices) or default


def optional_choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    """A value from a fixed set of choices; None when unset (the engine's own default)."""
    value = get(env, name)
    if value and value not in choices:
        raise SettingsError(f"{name}={value!r} is not valid; valid: {', '.join(choices)}")
    return value or None


def number(
    env: Mapping[str, str], name: str, kind: type, low: float, high: float | None = None
) -> int | float | None:
    """An int or float within [low, high]; None when unset."""
    raw = get(env, name)
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if (value is None or not math.isfinite(value) or value < low
            or (high is not None and value > high)):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        what = "an integer" if kind is int else "a number"
        raise SettingsError(f"{name}={raw!r} is not valid; expected {what} {bound}")
    return value


def integer(env: Mapping[str, str], name: str, default: int, low: int,
            high: int | None = None) -> int:
    """An integer with a default."""
    value = number(env, name, int, low, high)
    return default if value is None else int(value)


def seconds(env: Mapping[str, str], name: str, default: float, low: float,
            high: float | None = None) -> float:
    """A number (of seconds, milliseconds…) with a default."""
    value = number(env, name, float, low, high)
    return default if value is None else float(value)


def decimal(value: float) -> str:
    """A number as the shell reads it: digits, a point and at most three decimals (9, 0.25)."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def switch(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    """A 0/1 switch; unset is the default."""
    return choice(env, name, ("0", "1"), "1" if default else "0") == "1"
