"""Messages the probe sends, numbered and kept until the hub acknowledges them."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from testfleet.protocol.coverage import CoverMessage


class ProbeOutbox:
    """Numbers messages with the probe's own sequence; keeps each until ACK."""

    def __init__(self) -> None:
        self._pending: OrderedDict[int, str] = OrderedDict()
        self._sessions: dict[int, str] = {}
        self._next = 1
        self.changed = asyncio.Event()
        self.emptied = asyncio.Event()
        self.emptied.set()

    def add(self, message: CoverMessage) -> int:
        """Number `message` and queue it; returns its seq."""
        seq = self._next
        self._next += 1
        self._pending[seq] = message.model_copy(update={"seq": seq}).model_dump_json()
        session = getattr(message, "sessionId", None)
        if isinstance(session, str):
            self._sessions[seq] = session
        self.changed.set()
        self.emptied.clear()
        return seq

    def ack(self, seq: int) -> None:
        """Everything up to `seq` was handled by the hub."""
        while self._pending:
            first = next(iter(self._pending))
            if first > seq:
                break
            del self._pending[first]
            self._sessions.pop(first, None)
        if not self._pending:
            self.emptied.set()

    def drop(self, seq: int) -> None:
        """The hub refused `seq`: never send it again."""
        self._pending.pop(seq, None)
        self._sessions.pop(seq, None)
        if not self._pending:
            self.emptied.set()

    def discard_session(self, session_id: str) -> None:
        """A cancelled session's queued data is not worth sending."""
        for seq in [s for s, owner in self._sessions.items() if owner == session_id]:
            if '"COVERAGE_DATA_PART"' in self._pending.get(seq, ""):
                self.drop(seq)

    def after(self, seq: int) -> list[tuple[int, str]]:
        """Pending messages numbered above `seq`, in order."""
        return [(key, text) for key, text in self._pending.items() if key > seq]

    def __len__(self) -> int:
        return len(self._pending)
