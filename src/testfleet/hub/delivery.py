"""Delivery to agents: the one place that sends them tasks and stops, here or through the
hub they are connected to.

An agent connected to this hub gets its message on its socket. One connected to another hub
(several hubs on PostgreSQL) is reached through that hub: a notification names the task's
row, on the channel of the agent's hub as the store knows it, and that hub sends the message
(`relay.py`). New tasks are announced in the transaction that creates them, so none is lost
between the commit and the notification.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel
from sqlalchemy import Connection

from testfleet.hub.agents.connections import Connections
from testfleet.hub.plans import JobPlan, JobPlans
from testfleet.hub.relay import Relay
from testfleet.protocol.states import RunState
from testfleet.protocol.wire import RunTask, StopTask
from testfleet.protocol.wire_dev import PauseFlags
from testfleet.store import jobs as job_store
from testfleet.store import tasks as task_store
from testfleet.store.addresses import agent_of_task
from testfleet.store.db import Store
from testfleet.store.records import JobRecord, TaskRecord

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """Which of some agents are reached through another hub, decided before their tasks are
    created."""

    relay: Relay
    remote: frozenset[int]

    def announce(self, conn: Connection, tasks: Sequence[TaskRecord]) -> None:
        """In the creating transaction: notify the hubs of the remote agents' tasks."""
        for task in tasks:
            if task.agent_id in self.remote:
                self.relay.announce(conn, "task", task.id, to=agent_of_task)


class Delivery:
    """Sends RUN_TASK and STOP_TASK (and, for other services, any message) to agents."""

    def __init__(
        self, store: Store, connections: Connections, relay: Relay, plans: JobPlans
    ) -> None:
        self._store = store
        self._connections = connections
        self._relay = relay
        self._plans = plans
        self.pause_flags: Callable[[int], Awaitable[PauseFlags | None]] | None = None
        """Developer mode: the pause flags of a job's new tasks (None: no developer)."""
        relay.handle("task", self._notified_task)
        relay.handle("task_stop", self._notified_stop)
        relay.on_connect(self._catch_up)

    def send(self, agent_id: int, message: BaseModel) -> bool:
        """Send any message to an agent connected here; False if it is not."""
        return self._connections.send(agent_id, message)

    def route(self, agent_ids: Iterable[int]) -> Route:
        """Decide how to reach these agents' new tasks (see `Route.announce`)."""
        remote = (
            frozenset(a for a in agent_ids if a not in self._connections)
            if self._relay.enabled
            else frozenset()
        )
        return Route(self._relay, remote)

    async def send_created(self, route: Route, tasks: Sequence[TaskRecord], plan: JobPlan) -> None:
        """After the commit that created `tasks`: send the local ones their RUN_TASK (the
        remote ones were announced by `route`); one whose agent left meanwhile goes through
        whichever hub it is on now."""
        told = 0
        pause = await self._pause_of(tasks[0].job_id) if tasks else None
        for task in tasks:
            if task.agent_id in route.remote:
                told += 1
            elif (
                not self._connections.send(task.agent_id, run_task(task, plan, pause))
                and self._relay.enabled
            ):
                await self._relay.publish("task", task.id, to=agent_of_task)
        if told:
            self._relay.sent("task", told, to=agent_of_task)

    async def resend(self, tasks: Sequence[TaskRecord]) -> None:
        """Send pending tasks again (an agent ignores a task it has already got)."""
        for task in tasks:
            if task.state != RunState.PENDING:
                continue
            if task.agent_id in self._connections:
                plan = await self._plan_of(task.job_id)
                if plan is not None:
                    pause = await self._pause_of(task.job_id)
                    self._connections.send(task.agent_id, run_task(task, plan, pause))
            elif self._relay.enabled:
                await self._relay.publish("task", task.id, to=agent_of_task)

    async def stop(self, tasks: Sequence[TaskRecord], reason: str) -> None:
        """Ask the agents of `tasks` to stop them."""
        for task in tasks:
            message = StopTask(task_id=task.id, reason=reason)
            if not self._connections.send(task.agent_id, message) and self._relay.enabled:
                await self._relay.publish("task_stop", task.id, to=agent_of_task)

    async def _pause_of(self, job_id: int) -> PauseFlags | None:
        if self.pause_flags is None:
            return None
        try:
            return await self.pause_flags(job_id)
        except Exception:  # the task runs all the same, without its developer's flags
            _log.exception("job %d: cannot read its developer's pause flags", job_id)
            return None

    async def _plan_of(self, job_id: int) -> JobPlan | None:
        plan = self._plans.cached(job_id)
        if plan is not None:
            return plan
        job = await self._store.read(job_store.get_job, job_id)
        return self._plans.get(job.id, job.descriptor) if job is not None else None

    # ---- what other hubs ask of this one -------------------------------------------------------

    async def _notified_task(self, task_id: int) -> bool:
        task, job = await self._store.read(_task_and_job, task_id)
        if task is None or job is None or task.agent_id not in self._connections:
            return False
        if task.state == RunState.PENDING and not job.stop_requested:
            plan = self._plans.get(job.id, job.descriptor)
            pause = await self._pause_of(job.id)
            self._connections.send(task.agent_id, run_task(task, plan, pause))
        return True

    async def _notified_stop(self, task_id: int) -> bool:
        task = await self._store.read(task_store.get_task, task_id)
        if task is None or task.agent_id not in self._connections:
            return False
        if not task.finished:
            reason = "job stopped (on another hub)"
            self._connections.send(task.agent_id, StopTask(task_id=task_id, reason=reason))
        return True

    async def _catch_up(self) -> None:
        """After the listener (re)connects: send the pending tasks of the agents connected
        here, in case their notifications came while nobody listened."""
        agent_ids = self._connections.ids()
        if agent_ids:
            await self.resend(await self._store.read(_pending_tasks_of, agent_ids))


def run_task(task: TaskRecord, plan: JobPlan, pause: PauseFlags | None = None) -> RunTask:
    """The RUN_TASK of a task (with its job's developer-mode flags, if any)."""
    return RunTask(
        task_id=task.id,
        job_id=task.job_id,
        device_name=task.device_name,
        steps=plan.steps[task.test_index],
        pause=pause,
    )


def _task_and_job(conn: Connection, task_id: int) -> tuple[TaskRecord | None, JobRecord | None]:
    task = task_store.get_task(conn, task_id)
    return task, job_store.get_job(conn, task.job_id) if task is not None else None


def _pending_tasks_of(conn: Connection, agent_ids: list[int]) -> list[TaskRecord]:
    return [
        task
        for agent_id in agent_ids
        for task in task_store.unfinished_tasks_of_agent(conn, agent_id)
        if task.state == RunState.PENDING
    ]
