"""Durations: seconds as numbers, or strings with units; a short human form back."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from testfleet.protocol.durations import Duration, format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (30, 30.0),
        (2.5, 2.5),
        ("45", 45.0),
        ("0.5", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1h30m15s", 5415.0),
        ("500ms", 0.5),
        ("1m500ms", 60.5),
        ("1.5h", 5400.0),
        ("2d", 172800.0),
        (" 2 m ", 120.0),
        ("1h 30m", 5400.0),
        (" 30s ", 30.0),
        ("\t1.5\n", 1.5),
        ("1 m 30 s", 90.0),
        ("1h\t30m", 5400.0),
        ("5 ms", 0.005),
        ("1.5 s", 1.5),
    ],
)
def test_parse_duration(value: Any, seconds: float) -> None:
    result = parse_duration(value)
    assert isinstance(result, float)
    assert result == seconds


@pytest.mark.parametrize(
    "bad",
    [
        *("abc", "-1", "5x", "", "   ", "m", "5m3", "s5", "1_000", "1e3", "0x10", "+5"),
        *(-1, -0.5, True, False, None, [1]),
    ],
)
def test_bad_durations_say_what_is_accepted(bad: Any) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    "split", [" 1 5s", "1 5", "1 5s", "1\t5", "1h 3 0m", "1m 3 0", "1. 5s", "1 .5", "1 0 ms"]
)
def test_spaces_never_join_digits(split: str) -> None:
    with pytest.raises(ValueError, match=r"is not a duration: use seconds or units ms, s, m, h, d"):
        parse_duration(split)


def test_a_split_number_is_named_as_the_reason() -> None:
    with pytest.raises(ValueError, match=r"^' 1 5s' is not a duration: .*spaces cannot split a"):
        parse_duration(" 1 5s")


def test_a_bad_duration_names_the_units() -> None:
    with pytest.raises(ValueError, match=r"'5x' is not a duration.*ms, s, m, h, d"):
        parse_duration("5x")


@pytest.mark.parametrize("bad", ["nan", "inf", "Infinity", float("nan"), float("inf")])
def test_non_finite_durations_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0ms"),
        (0.25, "250ms"),
        (0.5, "500ms"),
        (1, "1s"),
        (30, "30s"),
        (90, "1m30s"),
        (3600, "1h"),
        (3660, "1h1m"),
        (5400.5, "1h30m0.5s"),
        (86400, "24h"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0, 0.001, 0.25, 1, 2.5, 59, 61, 90, 3599, 3600, 5400.5, 90061])
def test_format_duration_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


class _Model(BaseModel):
    """A model with a Duration field."""

    wait: Duration


def test_duration_as_a_pydantic_field() -> None:
    assert _Model.model_validate({"wait": "1m30s"}).wait == 90.0
    assert _Model.model_validate({"wait": 3}).wait == 3.0
    with pytest.raises(ValidationError) as caught:
        _Model.model_validate({"wait": "soon"})
    (error,) = caught.value.errors()
    assert error["loc"] == ("wait",)
    assert "not a duration" in error["msg"]
