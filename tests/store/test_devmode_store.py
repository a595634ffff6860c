"""Developer mode in the store: one developer per running job, tasks' pause state, the
job's `paused` state, relayed commands, and migration 0009."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import Connection, inspect

from testfleet.hub.devmode.service import SessionsExist
from testfleet.protocol.states import JobState, RunState
from testfleet.protocol.wire import StepStarted, TaskPaused, TaskResumed, TaskStarted
from testfleet.store import Store, devmode
from testfleet.store import jobs as job_store
from testfleet.store import tasks as task_store
from testfleet.store.ingest import TaskIndex, apply_events
from testfleet.store.migrate import alembic_config
from testfleet.store.task_ends import end_tasks
from tests.store.helpers import NOW, add_agent, add_job, set_running

pytestmark = pytest.mark.anyio


def running_job_with_task(conn: Connection) -> tuple[int, int, int]:
    """A running job with one pending task of two steps on agent a1: (job, task, agent)."""
    agent_id = add_agent(conn)
    job_id = add_job(conn)
    set_running(conn, job_id, "hub-a", NOW + timedelta(minutes=5))
    new = task_store.NewTask("a1/slot-0", "slot-0", agent_id, [("one", "echo"), ("two", "echo")])
    task = task_store.create_tasks(conn, job_id, 1, 0, 1, [new])[0]
    return job_id, task.id, agent_id


async def test_one_developer_per_job_tabs_counted_and_quitting_releases(store: Store) -> None:
    job_id, _, _ = await store.write(running_job_with_task)
    first = await store.write(devmode.attach, job_id, "ann", 1, NOW)
    assert isinstance(first, devmode.Attached) and first.created
    again = await store.write(devmode.attach, job_id, "ann", 1, NOW)
    assert isinstance(again, devmode.Attached) and not again.created
    assert again.session.tab_count == 2
    other = await store.write(devmode.attach, job_id, "bob", 2, NOW)
    assert isinstance(other, devmode.Held) and other.session.developer_name == "ann"

    left = await store.write(devmode.detach, job_id, "ann", NOW)
    assert left is not None and left.tab_count == 1  # a closed tab does not end it
    flags = await store.write(
        devmode.set_flags, job_id, "bob", pause_at="x", pause_on_failure=True, pause_on_next=False
    )
    assert flags is None  # only the holder sets flags
    assert await store.write(devmode.end_session, job_id, "quit", NOW, "bob") is None
    ended = await store.write(devmode.end_session, job_id, "quit", NOW, "ann")
    assert ended is not None and await store.read(devmode.get_session, job_id) is None
    taken = await store.write(devmode.attach, job_id, "bob", 2, NOW)
    assert isinstance(taken, devmode.Attached) and taken.created


async def test_only_running_jobs_take_a_developer_and_stale_sessions_are_found(
    store: Store,
) -> None:
    queued = await store.write(add_job)
    assert isinstance(await store.write(devmode.attach, queued, "ann", 1, NOW), devmode.NotRunning)
    missing = await store.write(devmode.attach, 10**9, "ann", 1, NOW)
    assert isinstance(missing, devmode.NotRunning) and missing.job is None
    job_id, _, _ = await store.write(running_job_with_task)
    await store.write(devmode.attach, job_id, "ann", 1, NOW)
    assert await store.read(devmode.stale_sessions, NOW) == []
    assert await store.read(devmode.stale_sessions, NOW + timedelta(seconds=1)) == [job_id]
    await store.write(devmode.touch, [job_id], NOW + timedelta(seconds=5))
    assert await store.read(devmode.stale_sessions, NOW + timedelta(seconds=1)) == []
    await store.write(job_store.update_job, job_id, state=JobState.COMPLETED)
    assert await store.read(devmode.stale_sessions, NOW) == [job_id]  # its job ended


async def test_paused_events_make_the_job_paused_until_resumed_or_ended(store: Store) -> None:
    job_id, task_id, agent_id = await store.write(running_job_with_task)
    index = TaskIndex()
    events = [
        TaskStarted(seq=1, task_id=task_id),
        StepStarted(seq=2, task_id=task_id, step_index=0),
        TaskPaused(seq=3, task_id=task_id, step_index=1, step_name="two", reason="reached two"),
    ]
    await store.write(apply_events, index, agent_id, "a1", None, events, NOW)
    job = await store.read(job_store.get_job, job_id)
    task = await store.read(task_store.get_task, task_id)
    assert job is not None and job.state == JobState.PAUSED
    assert task is not None and (task.paused, task.paused_step) == ("reached two", 1)

    resumed = [TaskResumed(seq=4, task_id=task_id, step_index=1, by="ann")]
    await store.write(apply_events, index, agent_id, "a1", None, resumed, NOW)
    job = await store.read(job_store.get_job, job_id)
    assert job is not None and job.state == JobState.RUNNING

    again = [TaskPaused(seq=5, task_id=task_id, step_index=1, step_name="two", reason="x")]
    await store.write(apply_events, index, agent_id, "a1", None, again, NOW)
    task = await store.read(task_store.get_task, task_id)
    assert task is not None
    await store.write(end_tasks, [task], RunState.INCOMPLETE, "agent lost", NOW)
    job = await store.read(job_store.get_job, job_id)
    task = await store.read(task_store.get_task, task_id)
    assert job is not None and job.state == JobState.RUNNING
    assert task is not None and task.paused is None


async def test_relayed_commands_are_taken_once(store: Store) -> None:
    job_id, _, agent_id = await store.write(running_job_with_task)
    command_id = await store.write(devmode.add_command, job_id, agent_id, {"type": "X"}, NOW)
    assert await store.write(devmode.take_command, command_id) == (agent_id, {"type": "X"})
    assert await store.write(devmode.take_command, command_id) is None
    await store.write(devmode.add_command, job_id, agent_id, {"type": "Y"}, NOW)
    assert await store.write(devmode.forget_old_commands, NOW + timedelta(seconds=1)) == 1


def _columns(conn: Connection, table: str) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns(table)}


async def test_migration_0009_adds_and_removes_the_devmode_schema(store: Store) -> None:
    def down(conn: Connection) -> None:
        command.downgrade(alembic_config(conn), "0008")

    def up(conn: Connection) -> None:
        command.upgrade(alembic_config(conn), "0009")

    job_id, _, _ = await store.write(running_job_with_task)
    await store.write(down)
    names = await store.read(lambda conn: set(inspect(conn).get_table_names()))
    assert "developer_sessions" not in names and "developer_commands" not in names
    assert "paused" not in await store.read(_columns, "tasks")
    await store.write(up)
    assert {"paused", "paused_step"} <= await store.read(_columns, "tasks")
    attached = await store.write(devmode.attach, job_id, "ann", None, NOW)
    assert isinstance(attached, devmode.Attached)  # the job and its task survived


async def test_a_reconnecting_fleet_asks_whether_sessions_exist_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    real_read = store.read

    async def counted(fn: object, *args: object, **kwargs: object) -> object:
        reads.append(getattr(fn, "__name__", "?"))
        return await real_read(fn, *args, **kwargs)

    monkeypatch.setattr(store, "read", counted)
    gate = SessionsExist(store)
    assert await asyncio.gather(*(gate.check() for _ in range(500))) == [False] * 500
    assert reads == ["any_session"]  # one read for all of them

    job_id, _, _ = await store.write(running_job_with_task)
    await store.write(devmode.attach, job_id, "ann", 1, NOW)  # as another hub would
    assert await gate.check() is False  # within FRESH_FOR: the earlier answer
    gate.FRESH_FOR = 0.0
    assert await gate.check() is True and reads == ["any_session"] * 2

    here = SessionsExist(store)
    here.now_true()  # attached on this hub: no read needed
    assert await here.check() is True and len(reads) == 2
