"""The lab watch's fingerprint on SQLite and PostgreSQL: schedules, webhooks, gateway sessions,
plan tasks and coverage changes show, each as its own part (the live channel's topics)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Connection

from testfleet.hub.live.lab_watch import LabPrint, read_print
from testfleet.protocol.plan_api import TaskState
from testfleet.store import Store, coverage_records
from testfleet.store import coverage as coverage_store
from testfleet.store import driver_sessions as session_store
from testfleet.store import plan_tasks as task_store
from testfleet.store import schedules as schedule_store
from testfleet.store import webhooks as webhook_store
from tests.store.helpers import NOW
from tests.store.test_coverage_store import add_build

pytestmark = pytest.mark.anyio


def add_schedule(conn: Connection) -> int:
    record = schedule_store.create_schedule(
        conn,
        name="nightly",
        cron="0 2 * * *",
        timezone="UTC",
        descriptor={"name": "n", "tests": []},
        params={},
        missed="once",
        enabled=True,
        next_fire_at=NOW + timedelta(hours=1),
        created_at=NOW,
        created_by="t",
    )
    assert record is not None
    return record.id


def add_webhook(conn: Connection) -> int:
    record = webhook_store.create_webhook(
        conn,
        url="http://127.0.0.1:9/",
        secret="s" * 20,
        events=["job.failed"],
        tags=[],
        description="",
        active=True,
        created_by="t",
        now=NOW,
    )
    return record.id


async def test_schedule_and_webhook_changes_change_their_own_part(store: Store) -> None:
    prints: list[LabPrint] = [await store.read(read_print)]

    async def changed() -> tuple[bool, bool]:
        prints.append(await store.read(read_print))
        before, now = prints[-2:]
        assert (before.agents, before.devices) == (now.agents, now.devices)
        return before.schedules != now.schedules, before.webhooks != now.webhooks

    schedule_id = await store.write(add_schedule)
    assert await changed() == (True, False)
    await store.write(schedule_store.update_schedule, schedule_id, enabled=False)
    assert await changed() == (True, False)
    later = NOW + timedelta(hours=5)
    await store.write(schedule_store.update_schedule, schedule_id, next_fire_at=later)
    assert await changed() == (True, False)
    assert await changed() == (False, False)  # nothing happened: nothing to tell
    webhook_id = await store.write(add_webhook)
    assert await changed() == (False, True)
    await store.write(webhook_store.update_webhook, webhook_id, active=False)
    assert await changed() == (False, True)
    await store.write(webhook_store.add_delivery, webhook_id, "ping", {"event": "ping"}, NOW)
    assert await changed() == (False, True)
    await store.write(webhook_store.delete_webhook, webhook_id)
    assert await changed() == (False, True)
    await store.write(schedule_store.delete_schedule, schedule_id)
    assert await changed() == (True, False)


async def test_gateway_sessions_plan_tasks_and_coverage_change_their_own_parts(
    store: Store,
) -> None:
    prints: list[LabPrint] = [await store.read(read_print)]

    async def changed() -> tuple[bool, bool, bool]:
        prints.append(await store.read(read_print))
        before, now = prints[-2:]
        return (
            before.sessions != now.sessions,
            before.plans != now.plans,
            before.coverage != now.coverage,
        )

    row = await store.write(
        session_store.open_request,
        requestor="t",
        requested={},
        priority=0,
        idle_timeout=60,
        hub="h",
        now=NOW,
    )
    assert await changed() == (True, False, False)
    command = {"session_id": row, "at": NOW, "method": "GET", "command": "title"}
    await store.write(
        session_store.record_activity, [], [{**command, "status": 200, "duration_ms": 1.0}]
    )
    assert await changed() == (True, False, False)
    await store.write(session_store.finish, row, "test", NOW)
    assert await changed() == (True, False, False)
    assert await changed() == (False, False, False)

    await store.write(
        task_store.create_task,
        task_id="run-1",
        type="run",
        plan="ping",
        case="ping",
        runner="local:exec",
        builder="exec:python",
        composition={},
        requestor="t",
        server_id="h",
        now=NOW,
    )
    assert await changed() == (False, True, False)
    await store.write(task_store.move_task, "run-1", TaskState.PROCESSING, NOW)
    assert await changed() == (False, True, False)
    await store.write(task_store.move_task, "run-1", TaskState.COMPLETE, NOW)
    assert await changed() == (False, True, False)

    build = await add_build(store)
    created = await store.write(
        coverage_store.create_session,
        session_id="s1",
        build=build,
        test_type="AUTO",
        test_name=None,
        is_realtime=False,
        is_global=False,
        agents=[],
        scope="app",
        started_by="t",
        job_id=None,
        now=NOW,
    )
    assert isinstance(created, coverage_records.SessionRecord)
    assert await changed() == (False, False, True)
    await store.write(coverage_store.set_session_state, "s1", "finished")
    assert await changed() == (False, False, True)
