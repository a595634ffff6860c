"""Reading a probe's frames. COVERAGE_DATA_PART has a fast path (a part may carry 65,535
classes and must be taken within 200 ms): orjson, then one pass that checks each object
against the build and turns its probes into bits. Anything unexpected falls back to the
pydantic models, whose error names the field (a JSON pointer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from testfleet.hub.errors import json_pointer
from testfleet.protocol.coverage import (
    MAX_PART_OBJECTS,
    PROBE_MESSAGE_TYPES,
    PROBE_MESSAGES,
    CoverDataPart,
    ProbeError,
    ProbeMessageModel,
)
from testfleet.store.coverage_codec import PartData

MAX_FRAME = 64 * 1024 * 1024
_BITS = bytes.maketrans(b"\x00\x01", b"01")
_FIELDS = frozenset({"id", "className", "probes", "testName", "testId"})

Layout = dict[str, tuple[int, int, int]]
"""A build's classes: name -> (index, class id, probe count)."""


@dataclass(frozen=True)
class Refusal:
    """Why a frame was refused, as the ERROR the probe gets."""

    code: str
    message: str
    location: str | None = None
    seq: int | None = None

    def error(self, *, fatal: bool = False) -> ProbeError:
        """The ERROR message."""
        return ProbeError(
            code=self.code,
            message=self.message,
            location=self.location,
            seq=self.seq,
            fatal=fatal,
        )


@dataclass(frozen=True)
class CheckedPart:
    """A COVERAGE_DATA_PART that fits its build."""

    session_id: str
    seq: int | None
    data: PartData


def _seq_of(document: Any) -> int | None:
    seq = document.get("seq") if isinstance(document, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 1 else None


def parse_probe_frame(
    text: str | bytes, layout: Layout | None
) -> CheckedPart | ProbeMessageModel | Refusal:
    """A probe's frame as a checked part (given the build's `layout`), another message of
    the probe protocol, or the refusal that says what is wrong and where."""
    if len(text) > MAX_FRAME:
        return Refusal("too_large", f"a message may be at most {MAX_FRAME} bytes")
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        return Refusal("malformed_message", f"not JSON: {error}")
    kind = document.get("type") if isinstance(document, dict) else None
    if kind not in PROBE_MESSAGE_TYPES:
        return Refusal(
            "unknown_message",
            f"unknown message type {kind!r}; known: {', '.join(PROBE_MESSAGE_TYPES)}",
            location="/type",
            seq=_seq_of(document),
        )
    if kind == "COVERAGE_DATA_PART" and layout is not None:
        checked = _fast_part(document, layout)
        if checked is not None:
            return checked
    try:
        message = PROBE_MESSAGES.validate_python(document)
    except ValidationError as error:
        first = error.errors()[0]
        location = json_pointer(first["loc"][1:])
        return Refusal(
            "malformed_message",
            f"{kind}: {location or '/'}: {first['msg']}",
            location=location,
            seq=_seq_of(document),
        )
    if isinstance(message, CoverDataPart) and layout is not None:
        refusal = _semantic_refusal(message, layout)
        if refusal is not None:
            return refusal
        # Valid, but not in the fast path's strict form (say, "true" as a string): the same
        # part read through the model.
        normal = {**document, "data": [item.model_dump() for item in message.data]}
        checked = _fast_part(normal, layout)
        assert checked is not None
        return checked
    return message


def _fast_part(document: dict[str, Any], layout: Layout) -> CheckedPart | None:
    """The part, if it is well-formed and fits the build; None to take the slow path."""
    session_id, seq, data = document.get("sessionId"), document.get("seq"), document.get("data")
    if type(session_id) is not str or type(data) is not list or len(data) > MAX_PART_OBJECTS:
        return None
    if len(document) > 4 or (seq is not None and (type(seq) is not int or seq < 1)):
        return None
    tests: dict[str, int] = {}
    classes: list[int] = []
    numbers: list[int] = []
    lengths: list[int] = []
    chunks: list[bytes] = []
    try:
        for item in data:
            if len(item) > 5 or not _FIELDS.issuperset(item):
                return None
            found = layout.get(item["className"])
            probes = item["probes"]
            if found is None or found[1] != item["id"] or found[2] != len(probes):
                return None
            test = item.get("testName", "")
            if type(test) is not str or type(probes) is not list:
                return None
            number = tests.get(test)
            if number is None:
                number = tests[test] = len(tests)
            classes.append(found[0])
            numbers.append(number)
            lengths.append(len(probes))
            chunks.append(bytes(probes[::-1]))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    raw = b"".join(chunks)
    if raw.translate(None, b"\x00\x01"):
        return None  # something other than true/false among the probes
    for item in data:  # ids and test ids must be of the right type too (cheap, rare to fail)
        if type(item["id"]) is not int or type(item.get("testId", "")) is not str:
            return None
    bits = raw.translate(_BITS)
    part = PartData(list(tests), classes, numbers, lengths, bits)
    return CheckedPart(session_id, seq, part)


def _semantic_refusal(part: CoverDataPart, layout: Layout) -> Refusal | None:
    """Why a well-formed part does not fit the build (which object, which field); None if
    it fits."""
    for number, item in enumerate(part.data):
        found = layout.get(item.className)
        where = f"/data/{number}"
        if found is None:
            return Refusal(
                "unknown_class",
                f"{where}/className: {item.className!r} is not a class of the probe's build",
                location=f"{where}/className",
                seq=part.seq,
            )
        if found[1] != item.id:
            return Refusal(
                "class_mismatch",
                f"{where}/id: class {item.className!r} has id {found[1]} in the build, not "
                f"{item.id}",
                location=f"{where}/id",
                seq=part.seq,
            )
        if found[2] != len(item.probes):
            return Refusal(
                "probe_count_mismatch",
                f"{where}/probes: class {item.className!r} has {found[2]} probes, the part "
                f"gives {len(item.probes)}",
                location=f"{where}/probes",
                seq=part.seq,
            )
    return None
