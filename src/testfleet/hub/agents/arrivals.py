"""Agents' registrations stored in batches: while one batch is written, the registrations
that come in wait together for the next, so a fleet reconnecting at once costs a transaction
and a handful of statements per batch (`agent_ops.register_agents`), not per agent.

A batch the store refuses (a bug, or bad data in one registration) is tried again one
registration at a time, so one bad registration never refuses the others; a store that is
away fails the whole batch, and each agent is told to come back.
"""

from __future__ import annotations

import asyncio
import logging

from testfleet.protocol.wire import utcnow
from testfleet.store import agent_ops
from testfleet.store.db import Store
from testfleet.store.writer import is_unavailable

_log = logging.getLogger(__name__)
MAX_BATCH = 64

Result = agent_ops.Registration | agent_ops.RegistrationRefused


class Arrivals:
    """Registers agents, many in one transaction when they come together."""

    def __init__(self, store: Store, server_id: str) -> None:
        self._store = store
        self._server_id = server_id
        self._waiting: list[tuple[agent_ops.Arrival, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def register(self, arrival: agent_ops.Arrival) -> Result:
        """Record the agent, its devices and its tasks' reconciliation (with others)."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((arrival, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all(), name="agent-arrivals")
        return await future

    async def _write_all(self) -> None:
        while self._waiting:
            batch = self._take()
            try:
                await self._write(batch)
            except BaseException as error:  # cancelled (shutdown): nobody is left waiting
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                raise

    def _take(self) -> list[tuple[agent_ops.Arrival, asyncio.Future[Result]]]:
        """The next batch: the first waiting, one registration a name (an agent whose
        earlier connection's registration is also waiting goes in a later batch)."""
        batch: list[tuple[agent_ops.Arrival, asyncio.Future[Result]]] = []
        names: set[str] = set()
        rest = []
        for item in self._waiting:
            if len(batch) < MAX_BATCH and item[0].name not in names and not item[1].done():
                batch.append(item)
                names.add(item[0].name)
            elif not item[1].done():
                rest.append(item)
        self._waiting = rest
        return batch

    async def _write(self, batch: list[tuple[agent_ops.Arrival, asyncio.Future[Result]]]) -> None:
        arrivals = [arrival for arrival, _ in batch]
        try:
            results = await self._store.write(
                agent_ops.register_agents, arrivals, hub=self._server_id, now=utcnow()
            )
        except Exception as error:
            if is_unavailable(error) or len(batch) == 1:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                return
            _log.warning("%d registrations failed together; trying each alone", len(batch))
            for item in batch:
                await self._write([item])
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
