"""New connections read in small batches per turn of the event loop, so a storm of them
never holds the loop.

The event loop accepts every connection waiting in the kernel's queue at once (the hub
listens with a backlog of 8,192, so a fleet reconnecting together is held, not refused),
and in the next turn it parses and answers every one of their WebSocket handshakes before
it runs anything else: 5,000 agents arriving together held the loop for 2.7 s, and
`/healthz`, heartbeats and running jobs all waited that long. Here a new connection is read
at once while fewer than `READS_PER_TURN` have started this turn; beyond that it waits,
paused, for a later turn, and everything else runs in between. uvicorn takes the protocol
class through its `http` setting.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

READS_PER_TURN = 32


class FirstReads:
    """Lets at most `per_turn` new connections of one event loop start reading per turn."""

    def __init__(self, loop: asyncio.AbstractEventLoop, per_turn: int | None = None) -> None:
        self._loop = loop
        self._per_turn = per_turn or READS_PER_TURN
        self._left = self._per_turn
        self._waiting: deque[PacedHttpToolsProtocol] = deque()
        self._turn_ends = False
        self.held = 0
        """Connections held for a later turn so far."""

    @property
    def waiting(self) -> int:
        """New connections held until a later turn."""
        return len(self._waiting)

    def admit(self, protocol: PacedHttpToolsProtocol) -> bool:
        """True if `protocol` may read now; otherwise it is held and started in a later turn."""
        self._end_turn_soon()
        if self._left > 0 and not self._waiting:
            self._left -= 1
            return True
        self._waiting.append(protocol)
        self.held += 1
        return False

    def _end_turn_soon(self) -> None:
        # A callback scheduled now runs in the loop's next turn, after its I/O.
        if not self._turn_ends:
            self._turn_ends = True
            self._loop.call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._turn_ends = False
        self._left = self._per_turn
        while self._left > 0 and self._waiting:
            protocol = self._waiting.popleft()
            if protocol.start_reading():
                self._left -= 1
        if self._waiting:
            self._end_turn_soon()


_first_reads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FirstReads] = (
    weakref.WeakKeyDictionary()
)


def first_reads(loop: asyncio.AbstractEventLoop) -> FirstReads:
    """The pacing of `loop`'s new connections."""
    pacing = _first_reads.get(loop)
    if pacing is None:
        pacing = _first_reads[loop] = FirstReads(loop)
    return pacing


class PacedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, whose connections start as `FirstReads` allows.

    A held connection's first bytes are kept and its reading paused (pausing in
    `connection_made` is not enough: uvloop starts reading after it); once let through,
    it reads on and the kept bytes are handled as if they had just arrived.
    """

    _started = False
    _held = b""

    def data_received(self, data: bytes) -> None:
        """Handle `data` as uvicorn does once this connection is let through."""
        if self._started:
            super().data_received(data)
        elif self._held:
            self._held += data  # arrived in the same read as the pause
        elif first_reads(self.loop).admit(self):
            self._started = True
            super().data_received(data)
        else:
            self._held = data
            self.flow.pause_reading()

    def start_reading(self) -> bool:
        """Let a held connection through (False if it has closed meanwhile)."""
        if self.transport.is_closing():
            return False
        self._started = True
        held, self._held = self._held, b""
        self.flow.resume_reading()
        super().data_received(held)
        return True
