"""An agent's arrival and loss, each one transaction over agents, devices and tasks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from testfleet.protocol.states import RunState
from testfleet.store import agents as agent_store
from testfleet.store import devices as device_store
from testfleet.store import hubs as hub_store
from testfleet.store import tasks as task_store
from testfleet.store import tokens as token_store
from testfleet.store.events import add_events, event_row
from testfleet.store.records import AgentRecord, TaskRecord
from testfleet.store.task_ends import end_tasks


@dataclass(frozen=True)
class RegistrationRefused:
    """Why an agent may not register (under that name, with that credential)."""

    reason: str


@dataclass(frozen=True)
class Registration:
    """An agent as registered, and its tasks reconciled with those it says it holds."""

    agent: AgentRecord
    resend: list[TaskRecord]
    """Pending tasks it does not hold: send them again."""
    lost: list[TaskRecord]
    """Running tasks it no longer holds (it restarted): now incomplete."""
    stale: list[int]
    """Tasks it holds that the hub has ended (or never knew): stop them on the agent."""


def register_agent(
    conn: Connection,
    *,
    name: str,
    instance_id: str,
    version: str,
    labels: dict[str, str],
    devices: Sequence[device_store.DeviceOffer],
    held_tasks: Sequence[int],
    hub: str,
    now: datetime,
    bind_token: int | None = None,
) -> Registration | RegistrationRefused:
    """Record the agent and its devices, and reconcile its tasks with what it holds.

    With `bind_token` (an agent token's id), the token must be for this agent name, or be
    bound to it now if it is for none and no other credential has the name.
    """
    if bind_token is not None:
        refusal = token_store.bind_agent_name(conn, bind_token, name)
        if refusal is not None:
            return RegistrationRefused(refusal)
    agent = agent_store.register_agent(
        conn,
        name=name,
        instance_id=instance_id,
        version=version,
        labels=labels,
        hub=hub,
        now=now,
    )
    device_store.sync_devices(conn, agent.id, name, devices)
    held = set(held_tasks)
    resend: list[TaskRecord] = []
    lost: list[TaskRecord] = []
    for task in task_store.unfinished_tasks_of_agent(conn, agent.id):
        if task.id not in held:
            (resend if task.state == RunState.PENDING else lost).append(task)
    reason = f"agent {name!r} no longer runs this task (it restarted)"
    end_tasks(conn, lost, RunState.INCOMPLETE, reason, now)
    known = {task.id: task for task in task_store.get_tasks(conn, sorted(held))}
    stale = [task_id for task_id in held if task_id not in known or known[task_id].finished]
    return Registration(agent=agent, resend=resend, lost=lost, stale=stale)


@dataclass(frozen=True)
class LostAgent:
    """An agent declared lost, and its tasks that ended incomplete."""

    reason: str
    tasks: list[TaskRecord]


def lose_agent(
    conn: Connection,
    agent_id: int,
    reason: str,
    now: datetime,
    hub: str,
    hubs_alive_since: datetime,
    heard_until: datetime,
) -> LostAgent | None:
    """Mark the agent and its devices offline and its open tasks incomplete; `hub` is the
    hub it was connected to as the judge knows it.

    Changes nothing (None) if the agent registered again after `heard_until`, or is now
    connected to another hub that is alive (has beaten since `hubs_alive_since`).
    """
    agent = agent_store.get_agent(conn, agent_id, lock=True)
    if agent is not None:
        if agent.connected_at is not None and agent.connected_at > heard_until:
            return None
        if agent.hub != hub and hub_store.hub_alive(conn, agent.hub, hubs_alive_since):
            return None
    name = agent.name if agent is not None else str(agent_id)
    reason = f"agent {name!r} lost: {reason}"
    agent_store.set_agent_offline(conn, agent_id)
    device_store.set_devices_offline(conn, agent_id)
    open_tasks = task_store.unfinished_tasks_of_agent(conn, agent_id)
    end_tasks(conn, open_tasks, RunState.INCOMPLETE, reason, now)
    data = {"agent": name, "reason": reason, "tasks": [task.id for task in open_tasks]}
    add_events(conn, [event_row("agent_lost", now, data=data)])
    return LostAgent(reason=reason, tasks=open_tasks)
