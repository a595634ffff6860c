"""Where the sync service's state lives. Every engine counts entries and numbers messages the
same way; the hub's fan-out (`core.py`) sits in front of it.

- `MemoryEngine`: in this hub's memory (SQLite: one hub). A client's reconnect keeps it; a hub
  restart does not.
- `PostgresEngine` (`postgres.py`): in the store, shared by every hub on it; changes reach
  the other hubs by LISTEN/NOTIFY.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from testfleet.store.sync_state import STATE, TOPIC

Change = Callable[[str, str, str, int], None]
"""(run, kind, name, value): a state's count or a topic's last seq changed on another hub."""


class SyncEngine(Protocol):
    """The state of every run's sync service."""

    shared: bool
    """True when other hubs see the same state (and `watch` hears their changes)."""

    async def signal(
        self, run: str, state: str, keys: Sequence[str | None]
    ) -> tuple[list[int], int]:
        """Count entries into `state` (a known key keeps its number); (seqs, new count)."""
        ...

    async def publish(
        self, run: str, topic: str, items: Sequence[tuple[str | None, str]]
    ) -> list[int]:
        """Append (key, payload JSON) items to `topic`; their seqs."""
        ...

    async def counter(self, run: str, kind: str, name: str) -> int:
        """A state's count or a topic's last seq."""
        ...

    async def read(self, run: str, topic: str, after: int, limit: int) -> list[tuple[int, str]]:
        """A topic's messages after `after`: (seq, payload JSON)."""
        ...

    def log(self, run: str, topic: str) -> list[tuple[int, str]] | None:
        """The topic's whole message list, when the engine holds it in memory (index =
        seq - 1); None otherwise."""
        ...

    async def counters(self, run: str) -> list[tuple[str, str, int]]:
        """Every (kind, name, value) of a run."""
        ...

    async def drop(self, run: str) -> None:
        """Forget a run."""
        ...

    async def expire(self, idle: float) -> list[str]:
        """Forget runs unchanged for `idle` seconds; returns them."""
        ...

    def watch(self, on_change: Change, on_resync: Callable[[], None]) -> None:
        """Hear other hubs' changes; `on_resync` after a gap in hearing them."""
        ...

    async def run(self) -> None:
        """Whatever the engine does in the background, until cancelled."""
        ...

    async def close(self) -> None:
        """Let go of what the engine holds (connections)."""
        ...


class MemoryEngine:
    """The state in this hub's memory."""

    shared = False

    def __init__(self) -> None:
        self._counters: dict[tuple[str, str, str], int] = {}
        self._entry_keys: dict[tuple[str, str], dict[str, int]] = {}
        self._messages: dict[tuple[str, str], list[tuple[int, str]]] = {}
        self._message_keys: dict[tuple[str, str], dict[str, int]] = {}
        self._touched: dict[str, float] = {}

    async def signal(
        self, run: str, state: str, keys: Sequence[str | None]
    ) -> tuple[list[int], int]:
        self._touched[run] = time.monotonic()
        known = self._entry_keys.setdefault((run, state), {})
        value = self._counters.get((run, STATE, state), 0)
        seqs = []
        for key in keys:
            if key is not None and key in known:
                seqs.append(known[key])
                continue
            value += 1
            seqs.append(value)
            if key is not None:
                known[key] = value
        self._counters[(run, STATE, state)] = value
        return seqs, value

    async def publish(
        self, run: str, topic: str, items: Sequence[tuple[str | None, str]]
    ) -> list[int]:
        self._touched[run] = time.monotonic()
        known = self._message_keys.setdefault((run, topic), {})
        messages = self._messages.setdefault((run, topic), [])
        seqs = []
        for key, payload in items:
            if key is not None and key in known:
                seqs.append(known[key])
                continue
            seq = len(messages) + 1
            messages.append((seq, payload))
            seqs.append(seq)
            if key is not None:
                known[key] = seq
        self._counters[(run, TOPIC, topic)] = len(messages)
        return seqs

    async def counter(self, run: str, kind: str, name: str) -> int:
        return self._counters.get((run, kind, name), 0)

    async def read(self, run: str, topic: str, after: int, limit: int) -> list[tuple[int, str]]:
        return self._messages.get((run, topic), [])[after : after + limit]

    def log(self, run: str, topic: str) -> list[tuple[int, str]] | None:
        return self._messages.setdefault((run, topic), [])

    async def counters(self, run: str) -> list[tuple[str, str, int]]:
        return sorted(
            (kind, name, value) for (r, kind, name), value in self._counters.items() if r == run
        )

    async def drop(self, run: str) -> None:
        for counter in [k for k in self._counters if k[0] == run]:
            del self._counters[counter]
        for table in (self._entry_keys, self._messages, self._message_keys):
            for key in [k for k in table if k[0] == run]:
                del table[key]
        self._touched.pop(run, None)

    async def expire(self, idle: float) -> list[str]:
        limit = time.monotonic() - idle
        gone = [run for run, at in self._touched.items() if at < limit]
        for run in gone:
            await self.drop(run)
        return gone

    def watch(self, on_change: Change, on_resync: Callable[[], None]) -> None:
        """One hub: nobody else changes anything."""

    async def run(self) -> None:
        """Nothing in the background."""

    async def close(self) -> None:
        """Nothing to let go of."""
