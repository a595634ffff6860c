"""Reading probes' frames: the fast path for COVERAGE_DATA_PART agrees with the models, and
every refusal says what and where; parts survive their compact storage form."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from testfleet.hub.coverage.parts import CheckedPart, Refusal, parse_probe_frame
from testfleet.protocol.coverage import SessionStarted
from testfleet.store.coverage_codec import decode_part, encode_part, mask_bytes, mask_of

LAYOUT = {"a.py": (0, 11, 3), "b.py": (1, 22, 70)}


def part(data: list[dict[str, Any]], **extra: Any) -> str:
    return json.dumps(
        {"type": "COVERAGE_DATA_PART", "sessionId": "s", "seq": 4, "data": data, **extra}
    )


def entry(name: str = "a.py", probes: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    cid = LAYOUT[name][1] if name in LAYOUT else 5
    return {
        "id": cid,
        "className": name,
        "probes": probes if probes is not None else [True, False, True],
        **extra,
    }


def test_a_good_part_is_read_to_masks_per_class_and_test() -> None:
    rng = random.Random(3)
    b = [rng.random() < 0.5 for _ in range(70)]
    checked = parse_probe_frame(
        part(
            [
                entry(),
                entry("b.py", b, testName="t1", testId="x"),
                entry(probes=[0, 1, 1], testName="t1"),
            ]
        ),
        LAYOUT,
    )
    assert isinstance(checked, CheckedPart)
    assert (checked.session_id, checked.seq, len(checked.data)) == ("s", 4, 3)
    assert list(checked.data.entries()) == [
        (0, "", 0b101),
        (1, "t1", sum(1 << i for i, hit in enumerate(b) if hit)),
        (0, "t1", 0b110),
    ]
    restored = decode_part(encode_part(checked.data))
    assert list(restored.entries()) == list(checked.data.entries())


@pytest.mark.parametrize(
    "data,code,location",
    [
        ([entry(probes=[True])], "probe_count_mismatch", "/data/0/probes"),
        ([entry(), entry("zz.py")], "unknown_class", "/data/1/className"),
        ([{**entry(), "id": 999}], "class_mismatch", "/data/0/id"),
        ([entry(probes=[True, "maybe", False])], "malformed_message", "/data/0/probes/1"),
        ([entry(probes=[True, 2, False])], "malformed_message", "/data/0/probes/1"),
        ([{**entry(), "extra": 1}], "malformed_message", "/data/0/extra"),
        ([{"className": "a.py", "probes": [True, True, True]}], "malformed_message", "/data/0/id"),
        ([entry(testName=5)], "malformed_message", "/data/0/testName"),
        ([entry()] * 65_536, "malformed_message", "/data"),
    ],
)
def test_a_bad_part_is_refused_naming_the_field(data: list[Any], code: str, location: str) -> None:
    refusal = parse_probe_frame(part(data), LAYOUT)
    assert isinstance(refusal, Refusal)
    assert (refusal.code, refusal.location, refusal.seq) == (code, location, 4)
    assert location in refusal.message or refusal.code == "malformed_message"


def test_what_the_models_accept_the_fast_path_accepts_too() -> None:
    checked = parse_probe_frame(part([entry(probes=["true", 0, "yes"])]), LAYOUT)
    assert isinstance(checked, CheckedPart)
    assert list(checked.data.entries()) == [(0, "", 0b101)]


def test_other_frames_are_models_or_refusals() -> None:
    started = parse_probe_frame(
        json.dumps(
            {"type": "SESSION_STARTED", "sessionId": "s", "testType": "AUTO", "ts": 1, "seq": 2}
        ),
        LAYOUT,
    )
    unknown = parse_probe_frame('{"type": "HELLO", "seq": 3}', LAYOUT)
    not_json = parse_probe_frame("{", LAYOUT)
    missing = parse_probe_frame('{"type": "SESSION_FINISHED", "seq": 9}', LAYOUT)

    assert isinstance(started, SessionStarted) and started.seq == 2
    assert isinstance(unknown, Refusal) and (unknown.code, unknown.location, unknown.seq) == (
        "unknown_message",
        "/type",
        3,
    )
    assert isinstance(not_json, Refusal) and not_json.code == "malformed_message"
    assert isinstance(missing, Refusal) and missing.location == "/sessionId" and missing.seq == 9


@pytest.mark.parametrize("mask", [0, 1, 0b1011, (1 << 200) - 1])
def test_masks_round_trip_as_bytes(mask: int) -> None:
    assert mask_of(mask_bytes(mask)) == mask
