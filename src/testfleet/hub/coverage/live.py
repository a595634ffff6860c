"""Realtime coverage: sessions whose totals the hub recalculates as parts arrive, and
wake-ups for those who watch them (the live stream of the API and the CLI)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from testfleet.store.coverage_codec import PartData


@dataclass
class LiveSession:
    """The covered probes of one session so far, per class."""

    classes: dict[int, int] = field(default_factory=dict)
    covered: int = 0
    probe_count: int = 0
    """The probes' own count (SESSION_CHANGED), summed over probes."""
    reported: dict[str, int] = field(default_factory=dict)

    def add(self, part: PartData) -> None:
        """Fold a part in."""
        classes = self.classes
        for idx, _, mask in part.entries():
            old = classes.get(idx, 0)
            new = old | mask
            if new != old:
                classes[idx] = new
                self.covered += (new ^ old).bit_count()

    def changed(self, agent_id: str, probe_count: int) -> None:
        """A probe reported its count for the session."""
        self.reported[agent_id] = probe_count
        self.probe_count = sum(self.reported.values())


class LiveBoard:
    """Realtime sessions kept in memory, and a version per session to wait on."""

    def __init__(self) -> None:
        self.sessions: dict[str, LiveSession] = {}
        self._versions: dict[str, int] = {}
        self._changed: dict[str, asyncio.Event] = {}

    def session(self, session_id: str) -> LiveSession | None:
        """The live totals of a session, if kept here."""
        return self.sessions.get(session_id)

    def keep(self, session_id: str, live: LiveSession) -> None:
        """Keep `live` as the session's totals."""
        self.sessions[session_id] = live
        self.bump(session_id)

    def forget(self, session_id: str) -> None:
        """The session is over."""
        self.sessions.pop(session_id, None)
        self.bump(session_id)

    def version(self, session_id: str) -> int:
        """Changes seen so far."""
        return self._versions.get(session_id, 0)

    def bump(self, session_id: str) -> None:
        """Something about the session changed."""
        self._versions[session_id] = self.version(session_id) + 1
        event = self._changed.pop(session_id, None)
        if event is not None:
            event.set()

    async def wait(self, session_id: str, seen: int, within: float) -> None:
        """Until the session changes after version `seen`, or `within` seconds."""
        if self.version(session_id) != seen:
            return
        event = self._changed.setdefault(session_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await event.wait()
