"""Writes a runner defers and commits together with the next one it must wait for.

Writes that nothing waits on (a test's end, say) are deferred, so a one-test job costs a
handful of transactions; the store still holds every fact before anything depends on it
(devices are given back before the next test asks for more).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Connection

from testfleet.hub.signals import Signals
from testfleet.store.db import Store

Write = Callable[[Connection], object]
"""A piece of a transaction: changes rows and adds events (`testfleet.store.job_progress`)."""


class PendingWrites:
    """One job's deferred writes."""

    def __init__(self, store: Store, signals: Signals, job_id: int) -> None:
        self._store = store
        self._signals = signals
        self._job_id = job_id
        self._deferred: list[Write] = []
        self._frees: list[str] = []

    def defer(self, write: Write, *, frees: Sequence[str] = ()) -> None:
        """Commit `write` with the next `commit`; `frees`: the devices it gives back."""
        self._deferred.append(write)
        self._frees.extend(frees)

    async def commit(self, *writes: Write) -> None:
        """Commit the deferred writes and `writes` in one transaction, then wake whoever
        waits on the job (and the allocator, if devices were given back)."""
        pending = [*self._deferred, *writes]
        frees = self._frees
        self._deferred = []
        self._frees = []
        if not pending:
            return

        def work(conn: Connection) -> None:
            for write in pending:
                write(conn)

        await self._store.write(work)
        self._signals.job_changed(self._job_id)
        if frees:
            self._signals.devices_released(frees)
