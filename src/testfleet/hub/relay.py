"""Reach agents and runners on other hubs that share the PostgreSQL store.

A hub runs the jobs it claimed, whichever hub their devices' agents are connected to. When
a message is for an agent connected elsewhere, or news is for a job run elsewhere, the hub
sends a notification naming a row ("task:42", "job:7") and the hub concerned acts on it,
reading the row from the store:

- `task:ID`      a task was given to your agent: send it RUN_TASK;
- `task_stop:ID` stop that task on your agent;
- `job:ID`       that job's tasks changed (you run it): look again;
- `job_stop:ID`  someone asked to stop that job (you run it).

A hub acts on notifications one at a time, in the order they came, so a stop never
overtakes the task it stops. Notifications are wake-ups: one lost (a listening connection
down, a failed write) delays, never breaks, because runners look at the store every second
and send a task still pending after a few seconds again, the hub catches up from the store
when its listener connects, and agents are reconciled when they register. On SQLite there
is only one hub, so nothing is ever sent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from testfleet.protocol.states import RunState
from testfleet.protocol.wire import RunTask, StopTask
from testfleet.store import jobs as job_store
from testfleet.store.notify import Listener, notify

if TYPE_CHECKING:
    from testfleet.hub.runtime import Hub

_log = logging.getLogger(__name__)
KINDS = frozenset({"task", "task_stop", "job", "job_stop"})


class Relay:
    """Sends and acts on the notifications between hubs."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.enabled = hub.store.is_postgres
        self._inbox: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self.listener = (
            Listener(hub.store.url, self._received, self._catch_up) if self.enabled else None
        )

    async def run(self) -> None:
        """Listen for other hubs and act on what they say, until cancelled (returns at once
        on SQLite)."""
        if self.listener is None:
            return
        async with asyncio.TaskGroup() as group:
            group.create_task(self.listener.run(), name="relay-listen")
            group.create_task(self._act_in_order(), name="relay-act")

    # ---- sending ------------------------------------------------------------------------------

    async def deliver(self, agent_id: int, message: RunTask | StopTask) -> None:
        """Send a task message to its agent, here or through the hub it is connected to."""
        if self.hub.agents.send(agent_id, message):
            return
        if self.enabled:
            kind = "task" if isinstance(message, RunTask) else "task_stop"
            await self._publish(kind, message.task_id)

    async def resend(self, task_id: int, agent_id: int) -> None:
        """Send a pending task to its agent again (it ignores a task it has already got)."""
        if agent_id in self.hub.agents.connections:
            await self.hub.jobs.dispatch(task_id)
        elif self.enabled:
            await self._publish("task", task_id)

    async def job_changed(self, job_id: int) -> None:
        """Wake the job's runner, here or on another hub."""
        self.hub.signals.job_changed(job_id)
        if self.enabled and job_id not in self.hub.jobs.runners:
            await self._publish("job", job_id)

    async def stop_job(self, job_id: int) -> None:
        """Tell the runner of a job asked to stop, here or on another hub."""
        runner = self.hub.jobs.runners.get(job_id)
        if runner is not None:
            runner.request_stop()
        elif self.enabled:
            await self._publish("job_stop", job_id)

    async def _publish(self, kind: str, row_id: int) -> None:
        try:
            await self.hub.store.write(notify, kind, row_id)
        except Exception:  # the store's own checks (leases, reconciling) still get there
            _log.exception("cannot notify other hubs of %s %d", kind, row_id)
        else:
            self.hub.metrics.relay_messages.labels("sent", kind).inc()

    # ---- receiving ----------------------------------------------------------------------------

    def _received(self, kind: str, row_id: int) -> None:
        if kind not in KINDS:
            _log.warning("hub notifications: unknown kind %r", kind)
            return
        self.hub.metrics.relay_messages.labels("received", kind).inc()
        self._inbox.put_nowait((kind, row_id))

    async def _act_in_order(self) -> None:
        handlers = {
            "task": self._run_task,
            "task_stop": self._stop_task,
            "job": self._job_changed,
            "job_stop": self._job_stop,
        }
        while True:
            kind, row_id = await self._inbox.get()
            try:
                await handlers[kind](row_id)
            except Exception:  # the store's own checks get there later
                _log.exception("cannot act on the notification %s:%d", kind, row_id)

    async def _run_task(self, task_id: int) -> None:
        task, job = await self.hub.store.read(job_store.task_with_job, task_id)
        if task is None or job is None or task.agent_id not in self.hub.agents.connections:
            return
        if task.state == RunState.PENDING and not job.stop_requested:
            self.hub.jobs.send_task(task, job)

    async def _stop_task(self, task_id: int) -> None:
        task = await self.hub.store.read(job_store.get_task, task_id)
        if task is not None and not RunState(task.state).finished:
            self.hub.agents.send(
                task.agent_id, StopTask(task_id=task_id, reason="job stopped (on another hub)")
            )

    async def _job_changed(self, job_id: int) -> None:
        if job_id in self.hub.jobs.runners:  # only runners care; a follower looks every second
            self.hub.signals.job_changed(job_id)

    async def _job_stop(self, job_id: int) -> None:
        runner = self.hub.jobs.runners.get(job_id)
        if runner is not None:
            runner.request_stop()

    async def _catch_up(self) -> None:
        """After (re)connecting: send the pending tasks of the agents connected here, in case
        their notifications came while nobody listened."""
        agent_ids = list(self.hub.agents.connections)
        if not agent_ids:
            return

        def pending(conn: Connection) -> list[Any]:
            return [
                task.id
                for agent_id in agent_ids
                for task in job_store.unfinished_tasks_of_agent(conn, agent_id)
                if task.state == RunState.PENDING
            ]

        for task_id in await self.hub.store.read(pending):
            await self.hub.jobs.dispatch(task_id)
