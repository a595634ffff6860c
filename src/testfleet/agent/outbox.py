"""Events the agent has sent or will send, kept until the hub acknowledges them."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass

from pydantic import BaseModel


@dataclass(frozen=True)
class Entry:
    """One numbered event, encoded once."""

    seq: int
    text: str
    final_of_task: int | None


class Outbox:
    """Numbers events (the agent's own sequence, across reconnects) and keeps them until ACK."""

    def __init__(self) -> None:
        self._pending: OrderedDict[int, Entry] = OrderedDict()
        self._next_seq = 1
        self.changed = asyncio.Event()
        self.emptied = asyncio.Event()
        self.emptied.set()
        self._acked = asyncio.Event()

    @property
    def next_seq(self) -> int:
        """The seq the next event will get."""
        return self._next_seq

    def add(self, event: BaseModel, *, final_of_task: int | None = None) -> int:
        """Number `event` (its `seq` field is set here) and queue it."""
        seq = self._next_seq
        self._next_seq += 1
        event = event.model_copy(update={"seq": seq})
        self._pending[seq] = Entry(seq, event.model_dump_json(), final_of_task)
        self.changed.set()
        self.emptied.clear()
        return seq

    def ack(self, seq: int) -> None:
        """The hub stored every event up to `seq`."""
        while self._pending:
            first = next(iter(self._pending))
            if first > seq:
                break
            del self._pending[first]
        if not self._pending:
            self.emptied.set()
        self._acked.set()

    async def wait_acked(self, seq: int, within: float) -> bool:
        """Until the hub has acknowledged `seq` (True), or `within` seconds (False)."""
        try:
            async with asyncio.timeout(within):
                while seq in self._pending:
                    self._acked.clear()
                    await self._acked.wait()
        except TimeoutError:
            return False
        return True

    def resume_after(self, hub_last_seq: int) -> None:
        """After (re)registering: drop what the hub has, and never reuse a seq it has seen."""
        self.ack(hub_last_seq)
        if self._next_seq <= hub_last_seq:
            self._next_seq = hub_last_seq + 1

    def after(self, seq: int) -> list[Entry]:
        """Pending events with a seq above `seq`, in order."""
        return [entry for key, entry in self._pending.items() if key > seq]

    def unacked_final_tasks(self) -> set[int]:
        """Tasks whose final event the hub has not acknowledged yet."""
        return {e.final_of_task for e in self._pending.values() if e.final_of_task is not None}

    def __len__(self) -> int:
        return len(self._pending)
