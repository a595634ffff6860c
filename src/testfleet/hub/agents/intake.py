"""Storing an agent's events: batch by batch, acknowledged once stored; refusals answered.

- A store that cannot be reached (an outage) keeps the batch and the connection: the batch is
  tried again until it lands, while the inbox fills and the agent is slowed down.
- A batch the store refuses is tried one event at a time; an event refused alone is refused
  for good: its seq is used up, its task fails with the reason, the agent is told which.
- Events the hub will not take (another agent's task, an unknown task, a gap in the
  sequence) are answered with ERROR, at most a few a second per connection (the rest are
  counted and summed up), and logged with the agent's name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import DBAPIError

from testfleet.hub.agents.connections import AgentConnection
from testfleet.hub.jobs.news import JobNews
from testfleet.hub.metrics import HubMetrics
from testfleet.hub.signals import Signals
from testfleet.protocol.wire import Ack, Error, EventMessage, utcnow
from testfleet.store.db import Store
from testfleet.store.ingest import Applied, Refused, TaskIndex, apply_events, refuse_event
from testfleet.store.writer import is_unavailable

_log = logging.getLogger(__name__)
MAX_BATCH = 500
RETRY_FIRST, RETRY_LONGEST = 0.2, 5.0  # seconds between tries while the store is away


class Intake:
    """Stores the events of the agents connected here."""

    def __init__(
        self,
        store: Store,
        news: JobNews,
        signals: Signals,
        metrics: HubMetrics,
        task_index: TaskIndex,
        before_ack: Callable[[list[EventMessage]], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._news = news
        self._signals = signals
        self._metrics = metrics
        self._task_index = task_index
        self._before_ack = before_ack
        """Called with each stored batch before it is acknowledged (coverage steps)."""

    async def run(self, connection: AgentConnection) -> None:
        """Store the connection's events as they come, until cancelled or until the agent
        has caused too many refusals (then it returns, and its connection is closed)."""
        while not connection.refusals.exhausted:
            batch = await connection.inbox.take(MAX_BATCH)
            applied = await self._store_batch(connection, batch)
            if self._before_ack is not None:
                try:
                    await self._before_ack(batch)
                except Exception:  # the events are stored: acknowledge them all the same
                    _log.exception("acting on events of agent %s failed", connection.name)
            await self._settle(connection, applied)

    async def _store_batch(self, connection: AgentConnection, batch: list[EventMessage]) -> Applied:
        wait = RETRY_FIRST
        told = False
        while True:
            try:
                return await self._apply(connection, batch)
            except Exception as error:
                if not is_unavailable(error):
                    return await self._one_by_one(connection, batch)
                if not told:
                    _log.warning(
                        "cannot store events of agent %s: the store is away (%r); "
                        "holding them and trying again",
                        connection.name,
                        error,
                    )
                    connection.send(
                        Error(
                            code="store_unavailable",
                            message="the hub's store is away; your events are kept and "
                            "stored when it is back",
                        )
                    )
                    told = True
                await asyncio.sleep(wait)
                wait = min(wait * 2, RETRY_LONGEST)

    async def _apply(self, connection: AgentConnection, batch: list[EventMessage]) -> Applied:
        applied = await self._store.write(
            apply_events,
            self._task_index,
            connection.agent_id,
            connection.name,
            connection.last_seq if connection.last_seq_read else None,
            batch,
            utcnow(),
        )
        connection.last_seq = applied.highest_seq
        connection.last_seq_read = True
        return applied

    async def _one_by_one(self, connection: AgentConnection, batch: list[EventMessage]) -> Applied:
        """The batch failed as a whole: store each event alone; refuse those that fail."""
        total = Applied(highest_seq=connection.last_seq)
        for event in batch:
            try:
                applied = await self._apply(connection, [event])
            except Exception as error:
                if is_unavailable(error):
                    raise
                applied = await self._refuse(connection, event, error)
            total.highest_seq = max(total.highest_seq, applied.highest_seq)
            total.stored += applied.stored
            total.jobs |= applied.jobs
            total.tasks_ended |= applied.tasks_ended
            total.devices_changed |= applied.devices_changed
            total.refused += applied.refused
            if applied.gap is not None:
                total.gap = applied.gap
                break
        return total

    async def _refuse(
        self, connection: AgentConnection, event: EventMessage, error: Exception
    ) -> Applied:
        if event.seq != connection.last_seq + 1:  # out of order: the gap rule answers it
            return await self._apply(connection, [])
        cause = _describe(error)
        reason = f"the hub could not store an event of this task: {cause}"
        task = await self._store.write(
            refuse_event, connection.agent_id, event, reason[:2000], utcnow()
        )
        _log.error("agent %s: event %d refused for good: %s", connection.name, event.seq, cause)
        connection.last_seq = event.seq
        applied = Applied(highest_seq=event.seq)
        task_id = getattr(event, "task_id", None)
        applied.refused.append(
            Refused(event.seq, "event_refused", f"the store refused it: {cause}", task_id)
        )
        if task is not None:
            applied.jobs.add(task.job_id)
            applied.tasks_ended.add(task.job_id)
        return applied

    async def _settle(self, connection: AgentConnection, applied: Applied) -> None:
        self._metrics.events_stored.inc(applied.stored)
        connection.send(Ack(seq=applied.highest_seq))
        for refused in applied.refused:
            self._answer(connection, refused.code, f"event {refused.seq}: {refused.message}")
        if applied.gap is not None:
            message = f"expected event {applied.gap} next; send your events again from there"
            self._answer(connection, "seq_gap", message)
        await asyncio.gather(
            *(
                self._news.changed(job_id, tasks=job_id in applied.tasks_ended)
                for job_id in applied.jobs
            )
        )
        if applied.devices_changed:
            self._signals.devices_changed(connection.agent_id)

    def _answer(self, connection: AgentConnection, code: str, message: str) -> None:
        """ERROR to the agent and a warning in the log, within the connection's budget."""
        self._metrics.agent_errors.inc()
        if connection.refusals.spend():
            suppressed = connection.refusals.take_suppressed()
            if suppressed:
                _log.warning("agent %s: %d more refusals not shown", connection.name, suppressed)
            _log.warning("agent %s: refused: %s: %s", connection.name, code, message)
            connection.send(Error(code=code, message=message))


def _describe(error: Exception) -> str:
    """A database error as its driver's message (without the statement and its data)."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    return f"{type(cause).__name__}: {cause}"
