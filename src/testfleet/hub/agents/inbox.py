"""What an agent's connection holds on the hub: its unprocessed events, bounded in bytes (the
reader waits, so the socket is not read and the agent is slowed down), and the budget of
refusals it may cause before the hub stops answering them one by one."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

from testfleet.protocol.wire import EventMessage

INBOX_BYTES = 8 * 1024 * 1024
"""Bytes of events queued per connection before the hub stops reading its socket."""


class Inbox:
    """Events waiting to be stored, bounded by the size of the frames they came in."""

    def __init__(self, limit: int = INBOX_BYTES) -> None:
        self.limit = limit
        self._items: deque[tuple[EventMessage, int]] = deque()
        self._bytes = 0
        self._changed = asyncio.Condition()

    @property
    def full(self) -> bool:
        """True while the reader waits for room (the hub, not the agent, is behind)."""
        return self._bytes >= self.limit

    def __len__(self) -> int:
        return len(self._items)

    async def put(self, event: EventMessage, size: int) -> None:
        """Queue an event of `size` bytes; waits while the inbox is full."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._bytes < self.limit)
            self._items.append((event, size))
            self._bytes += size
            self._changed.notify_all()

    async def take(self, most: int) -> list[EventMessage]:
        """At least one and at most `most` events, oldest first; waits for the first."""
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._items))
            taken: list[EventMessage] = []
            while self._items and len(taken) < most:
                event, size = self._items.popleft()
                self._bytes -= size
                taken.append(event)
            self._changed.notify_all()
            return taken


@dataclass
class RefusalBudget:
    """How many refusals a connection is answered (and logged) one by one: `rate` a second
    with bursts of `burst`; past that they are counted and summed up once a second. A
    connection that causes more than `limit` refusals a minute is closed."""

    rate: float = 10.0
    burst: float = 20.0
    limit: int = 1000
    _tokens: float = field(default=20.0, init=False)
    _at: float = field(default_factory=time.monotonic, init=False)
    suppressed: int = field(default=0, init=False)
    _window: deque[float] | None = field(default=None, init=False)
    """Times of the last minute's refusals; made at the first (most connections have none,
    and an empty deque is 760 bytes)."""

    def spend(self) -> bool:
        """Count one refusal; True if it may be answered and logged on its own."""
        now = time.monotonic()
        if self._window is None:
            self._window = deque()
        self._window.append(now)
        while self._window and now - self._window[0] > 60.0:
            self._window.popleft()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.suppressed += 1
        return False

    @property
    def exhausted(self) -> bool:
        """More than `limit` refusals in the last minute."""
        return self._window is not None and len(self._window) > self.limit

    def take_suppressed(self) -> int:
        """How many refusals went unanswered since the last call."""
        count, self.suppressed = self.suppressed, 0
        return count
