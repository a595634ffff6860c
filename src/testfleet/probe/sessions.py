"""The probe's sessions: which probes each active session has hit, per class and test, and
the COVERAGE_DATA_PART messages that carry what changed since the last part."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from testfleet.probe.build import Build
from testfleet.probe.meter import Hits
from testfleet.protocol.coverage import (
    MAX_PART_OBJECTS,
    CoverDataPart,
    ExecClassData,
    StartSessionPayload,
)

MAX_PART_BYTES = 24 * 1024 * 1024
"""Parts stay well under the hub's WebSocket frame limit (64 MB)."""

Key = tuple[str, str]
"""(module path, test name)."""


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return int(time.time() * 1000)


def id_of_test(name: str) -> str:
    """A stable id for a test name (Drill4J's testId)."""
    return hashlib.blake2b(name.encode(), digest_size=8).hexdigest() if name else ""


def probes_of(mask: int, count: int) -> list[bool]:
    """A bit mask as Drill4J's probe array."""
    bits = bin(mask)[:1:-1]
    return [c == "1" for c in bits] + [False] * (count - len(bits))


@dataclass
class Session:
    """One session the probe collects for."""

    payload: StartSessionPayload
    hits: dict[Key, int] = field(default_factory=dict)
    covered: dict[str, int] = field(default_factory=dict)
    """Per module, the probes hit by any test (for `probe_count`)."""
    dirty: set[Key] = field(default_factory=set)
    probe_count: int = 0
    reported_count: int = 0

    def test_for(self, context: str) -> str:
        """The test a line recorded under `context` belongs to."""
        return context or self.payload.testName or ""


class Sessions:
    """The active sessions of one probe."""

    def __init__(self, build: Build) -> None:
        self.build = build
        self.active: dict[str, Session] = {}

    def start(self, payload: StartSessionPayload) -> Session:
        """Begin a session (a START seen twice keeps the first)."""
        session = self.active.get(payload.sessionId)
        if session is None:
            session = self.active[payload.sessionId] = Session(payload)
        return session

    def add(self, hits: Hits, only: Session | None = None) -> None:
        """Lines executed since the last collection count for every active session (or for
        `only`)."""
        targets = list(self.active.values()) if only is None else [only]
        if not targets or not hits:
            return
        for filename, contexts in hits.items():
            module = self.build.modules.get(filename)
            if module is None:
                continue
            for context, ran in contexts.items():
                mask = module.probe_mask(ran)
                if not mask:
                    continue
                for session in targets:
                    key = (filename, session.test_for(context))
                    old = session.hits.get(key, 0)
                    new = old | mask
                    if new != old:
                        session.hits[key] = new
                        session.dirty.add(key)
                        seen = session.covered.get(filename, 0)
                        if mask & ~seen:
                            session.covered[filename] = seen | mask
                            session.probe_count += (mask & ~seen).bit_count()

    def parts(self, session: Session) -> list[CoverDataPart]:
        """The changed classes as parts of at most 65,535 objects (and about 24 MB of JSON);
        clears the changes."""
        objects = []
        for key in sorted(session.dirty):
            filename, test = key
            module = self.build.modules[filename]
            objects.append(
                ExecClassData(
                    id=module.cls.id,
                    className=module.cls.name,
                    probes=probes_of(
                        session.hits[key], len(module.cls.lines) + len(module.cls.arcs)
                    ),
                    testName=test,
                    testId=id_of_test(test),
                )
            )
        session.dirty.clear()
        parts: list[CoverDataPart] = []
        chunk: list[ExecClassData] = []
        size = 0
        for item in objects:
            weight = len(item.className) + len(item.testName) + 6 * len(item.probes) + 80
            if chunk and (len(chunk) == MAX_PART_OBJECTS or size + weight > MAX_PART_BYTES):
                parts.append(CoverDataPart(sessionId=session.payload.sessionId, data=chunk))
                chunk, size = [], 0
            chunk.append(item)
            size += weight
        if chunk:
            parts.append(CoverDataPart(sessionId=session.payload.sessionId, data=chunk))
        return parts

    def end(self, session_id: str) -> Session | None:
        """Forget a session (after its last parts were taken, or to discard it)."""
        return self.active.pop(session_id, None)
