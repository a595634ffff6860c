"""Connections read a bounded number at a time per turn of the event loop, so a storm of
them (a fleet connecting, or leaving, at once) is spread over many short turns.

An event loop handles, in one turn, every connection whose bytes have arrived: 5,000 agents
connecting together had their WebSocket handshakes parsed and answered in one turn that
held the loop for 2.7 s, and 10,000 leaving together held it for about a second while their
closing frames and sessions were handled. `/healthz`, heartbeats and running jobs all waited
that long. Here each turn lets through at most `FIRST_READS_PER_TURN` WebSocket handshakes
of new connections and `FRAMES_PER_TURN` WebSocket reads; beyond that a connection's bytes
are kept and its reading paused until a later turn, and everything else runs in between.
Plain HTTP requests are never held (a probe or a CLI call on a new connection does not
queue behind a reconnecting fleet), nor are later requests on a kept-alive connection.

A WebSocket's kept bytes are handled in order, before anything read later and before the
connection's end, so no message is lost. A handshake kept while its connection closes is
dropped with it (there is no one left to answer). uvicorn takes the two protocol classes
through its `http` and `ws` settings.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from typing import Protocol

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

_log = logging.getLogger(__name__)
FIRST_READS_PER_TURN = 32
FRAMES_PER_TURN = 128


class Held(Protocol):
    """A connection whose bytes wait for a later turn."""

    def start_reading(self) -> bool:
        """Handle the kept bytes and read on; False if there was nothing left to do."""

    def abort(self) -> None:
        """Drop the connection (handling its kept bytes failed)."""


class TurnAllowance:
    """Lets at most `per_turn` reads through per turn of the running loop; holds the rest."""

    def __init__(self, per_turn: int) -> None:
        self._per_turn = per_turn
        self._left = per_turn
        self._waiting: deque[Held] = deque()
        self._turn_ends = False
        self.held = 0
        """Reads held for a later turn so far."""

    @property
    def waiting(self) -> int:
        """Connections held until a later turn."""
        return len(self._waiting)

    def admit(self, connection: Held) -> bool:
        """True if `connection` may read now; otherwise it is held and started later."""
        self._end_turn_soon()
        if self._left > 0 and not self._waiting:
            self._left -= 1
            return True
        self._waiting.append(connection)
        self.held += 1
        return False

    def _end_turn_soon(self) -> None:
        # A callback scheduled now runs in the loop's next turn, after its I/O.
        if not self._turn_ends:
            self._turn_ends = True
            asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._turn_ends = False
        self._left = self._per_turn
        try:
            while self._left > 0 and self._waiting:
                connection = self._waiting.popleft()
                try:
                    if connection.start_reading():
                        self._left -= 1
                except Exception:  # as the loop would for a failing data_received
                    _log.exception("a held connection failed to start reading; dropping it")
                    self._left -= 1
                    connection.abort()
        finally:
            if self._waiting:
                self._end_turn_soon()


# Per event loop (the values hold no reference to their loop, so a closed loop goes away).
_allowances: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, TurnAllowance]] = (
    weakref.WeakKeyDictionary()
)


def allowance(loop: asyncio.AbstractEventLoop, kind: str) -> TurnAllowance:
    """`loop`'s allowance of "first" reads (handshakes) or "frames" (WebSocket reads)."""
    of_loop = _allowances.get(loop)
    if of_loop is None:
        of_loop = _allowances[loop] = {}
    found = of_loop.get(kind)
    if found is None:
        per_turn = FIRST_READS_PER_TURN if kind == "first" else FRAMES_PER_TURN
        found = of_loop[kind] = TurnAllowance(per_turn)
    return found


def may_be_websocket_handshake(data: bytes) -> bool:
    """Whether a connection's first bytes are (or, incomplete, may be) a WebSocket upgrade."""
    head, end, _ = data.partition(b"\r\n\r\n")
    return not end or b"websocket" in head.lower()


class PacedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, whose new connections' WebSocket handshakes are read as
    the allowance lets them.

    A held connection's first bytes are kept and its reading paused (pausing in
    `connection_made` is not enough: uvloop starts reading after it); once let through, it
    reads on and the kept bytes are handled as if they had just arrived.
    """

    _started = False
    _kept = b""

    def data_received(self, data: bytes) -> None:
        """Handle `data` as uvicorn does once this connection is let through."""
        if self._started:
            super().data_received(data)
        elif self._kept:
            self._kept += data  # arrived in the same read as the pause
        elif not may_be_websocket_handshake(data) or allowance(self.loop, "first").admit(self):
            self._started = True
            super().data_received(data)
        else:
            self._kept = data
            self.flow.pause_reading()

    def start_reading(self) -> bool:
        """Let a held connection through (False if it has closed meanwhile)."""
        if self.transport.is_closing():
            return False
        self._started = True
        kept, self._kept = self._kept, b""
        self.flow.resume_reading()
        super().data_received(kept)
        return True

    def abort(self) -> None:
        """Drop the connection."""
        self.transport.abort()


class PacedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, whose reads go through the allowance of frames.

    The handshake the HTTP protocol hands over is handled at once (it was paced there).
    """

    _handshake_seen = False
    _kept = b""
    _frames: TurnAllowance | None = None

    def data_received(self, data: bytes) -> None:
        """Handle `data` as uvicorn does, now or in a later turn."""
        if not self._handshake_seen:
            self._handshake_seen = True
            super().data_received(data)
            return
        if self._kept:
            self._kept += data  # held: later bytes queue behind the kept ones
            return
        if self._frames is None:
            self._frames = allowance(self.loop, "frames")
        if self._frames.admit(self):
            super().data_received(data)
        else:
            self._kept = data
            self.transport.pause_reading()

    def start_reading(self) -> bool:
        """Handle the kept bytes and read on (False if the connection ended meanwhile)."""
        if not self._kept:
            return False
        kept, self._kept = self._kept, b""
        if not self.read_paused and not self.transport.is_closing():
            self.transport.resume_reading()  # unless uvicorn paused it for its own queue
        super().data_received(kept)
        return True

    def abort(self) -> None:
        """Drop the connection."""
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        """Handle any kept bytes first, then end as uvicorn does."""
        try:
            if self._kept:
                kept, self._kept = self._kept, b""
                super().data_received(kept)
        finally:
            super().connection_lost(exc)
