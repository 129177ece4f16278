"""Checks of user-given values (counts, choices, numbers) shared by the settings, the CLI and the app.

Each returns the clean value or raises `InputError` whose message names the field, says what was wrong and what
is accepted, so every caller gives the same fix-it message for the same mistake.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

from explorer.errors import InputError


def check_count(name: str, value: float | int | None, low: int, high: int | None = None) -> int:
    """A whole number within [low, high] (no upper bound when `high` is None), or a message giving the range."""
    allowed = f"between {low} and {high}" if high is not None else f"of at least {low}"
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or float(value) != int(value)
    ):
        raise InputError(f"{name} must be a whole number {allowed}, got {value!r}.")
    if int(value) < low or (high is not None and int(value) > high):
        raise InputError(f"{name} must be {allowed}, got {int(value)}.")
    return int(value)


def check_number(name: str, value: float | int | None, low: float, strictly_above: bool = False) -> float:
    """A finite number >= low (> low when `strictly_above`), or a message that says what is accepted."""
    relation = f"above {low:g}" if strictly_above else f"{low:g} or more"
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number {relation}, got {value!r}.")
    if value < low or (strictly_above and value == low):
        raise InputError(f"{name} must be {relation}, got {value!r}.")
    return float(value)


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """`value` when it is one of `choices`, else a message that lists them."""
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(choices)}, got {value!r}.")
    return value


MAX_TYPED_DIGITS = 12  # longer typed numbers are out of every range here (and int() of thousands of digits fails)


def typed_whole_number(token: str) -> int | None:
    """A whole number as a user types it: ASCII digits only, at most MAX_TYPED_DIGITS of them (leading zeros
    aside); None otherwise. `int()` alone would take "1_0" (10), other scripts' digits ("٣" is 3) and refuse
    5,000 digits with an error of its own."""
    if not (token.isascii() and token.isdigit()) or len(token.lstrip("0")) > MAX_TYPED_DIGITS:
        return None
    return int(token)


def shown_token(token: str, width: int = 20) -> str:
    """A typed token for a message, cut to `width` characters."""
    return repr(token if len(token) <= width else token[:width] + "…")
