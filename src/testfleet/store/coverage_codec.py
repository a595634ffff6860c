"""Compact forms of coverage data: probe bit masks as bytes, a part as one compressed blob.

A part is stored as received (after checking) in one row, so ingest costs one insert however
many classes it carries; finishing a session folds the parts into per-(class, test) masks.
A part's blob holds the class indexes, test numbers and probe counts as lists, and every
probe array as one string of '0' and '1' (probe 0 first, as received).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

Entry = tuple[int, str, int]
"""(class index, test name, probe mask)."""


@dataclass
class PartData:
    """A checked part: for each object its class index, test number and probe bits."""

    tests: list[str]
    classes: list[int]
    test_numbers: list[int]
    lengths: list[int]
    bits: bytes

    def entries(self) -> Iterator[Entry]:
        """(class index, test name, mask) for each object."""
        bits, tests, offset = self.bits, self.tests, 0
        for idx, number, length in zip(self.classes, self.test_numbers, self.lengths, strict=True):
            chunk = bits[offset : offset + length]
            offset += length
            yield idx, tests[number], int(chunk[::-1], 2) if chunk else 0

    def __len__(self) -> int:
        return len(self.classes)


def mask_bytes(mask: int) -> bytes:
    """A probe mask as little-endian bytes (bit i: probe i)."""
    return mask.to_bytes((mask.bit_length() + 7) // 8, "little")


def mask_of(data: bytes) -> int:
    """The probe mask stored by `mask_bytes`."""
    return int.from_bytes(data, "little")


def encode_part(part: PartData) -> bytes:
    """A checked part as one compressed blob."""
    document = {
        "t": part.tests,
        "i": part.classes,
        "n": part.test_numbers,
        "l": part.lengths,
        "b": part.bits.decode("ascii"),
    }
    return zlib.compress(orjson.dumps(document), 1)


def decode_part(blob: bytes) -> PartData:
    """The part stored by `encode_part`."""
    data = orjson.loads(zlib.decompress(blob))
    return PartData(data["t"], data["i"], data["n"], data["l"], data["b"].encode("ascii"))
