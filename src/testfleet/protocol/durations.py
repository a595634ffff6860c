"""Durations as users write them: seconds as numbers, or strings such as "30s", "5m", "1h30m"."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

MAX_DURATION = 365 * 86400.0
"""The longest duration accepted (timeouts and intervals beyond it are mistakes)."""
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# One number and its unit; whitespace may come before the number and between it and the unit,
# never inside the number: "1 5s" is refused, not read as "15s".
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_SPLIT_NUMBER = re.compile(r"[\d.]\s+[\d.]")
_BARE_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")  # not float()'s "1_000", "1e3", "inf" or "-5"


def parse_duration(value: Any) -> float:
    """Return `value` in seconds; raise ValueError with the accepted forms when it is not one."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m', '1h30m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value.strip(), value)
    else:
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m', '1h30m'")
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be a finite number of seconds, got {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    if seconds > MAX_DURATION:
        raise ValueError(f"a duration may be at most 365 days, got {value!r}")
    return seconds


def _parse_text(text: str, original: str) -> float:
    """Seconds from a bare number ("90", "2.5") or from numbers with units ("1h 30m")."""
    if _BARE_NUMBER.fullmatch(text):
        return float(text)
    total = 0.0
    position = 0
    while position < len(text):
        match = _PART.match(text, position)
        if match is None:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(text) or not text:
        hint = "; spaces cannot split a number" if _SPLIT_NUMBER.search(text) else ""
        raise ValueError(
            f"{original!r} is not a duration: use seconds or units ms, s, m, h, d "
            f"(e.g. '1m30s'){hint}"
        )
    return total


def format_duration(seconds: float) -> str:
    """A short human form: 0.25 -> '250ms', 90 -> '1m30s'."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    rest = secs + (seconds - whole)
    if rest or not any(parts):
        parts.append(f"{rest:g}s")
    return "".join(parts)


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A pydantic field type: accepts 30, 2.5, "30s", "5m", "1h30m", "500ms"; holds seconds."""
