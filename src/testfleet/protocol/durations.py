"""Durations as users write them: seconds as numbers, or strings such as "30s", "5m", "1h30m"."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(value: Any) -> float:
    """Return `value` in seconds; raise ValueError with the accepted forms when it is not one."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m', '1h30m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        seconds = _parse_text(text, value)
    else:
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m', '1h30m'")
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be a finite number of seconds, got {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


def _parse_text(text: str, original: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    total = 0.0
    position = 0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(text) or not text:
        raise ValueError(
            f"{original!r} is not a duration: use seconds or units ms, s, m, h, d (e.g. '1m30s')"
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
