"""Schedules on SQLite and PostgreSQL: with several hubs firing at once, each fire starts
exactly one job."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Connection, func, select

from testfleet.store import Store
from testfleet.store import schedules as schedule_store
from testfleet.store.result_records import ScheduleRecord
from testfleet.store.tables import jobs
from tests.store.helpers import NOW, other_hubs

pytestmark = pytest.mark.anyio
SCHEDULES = 12
FIRES = 5


def minute_later(schedule: ScheduleRecord, after: datetime) -> datetime:
    assert schedule.next_fire_at is not None
    return max(schedule.next_fire_at, after.replace(second=0, microsecond=0)) + timedelta(minutes=1)


def add_schedules(conn: Connection) -> None:
    for number in range(SCHEDULES):
        schedule_store.create_schedule(
            conn,
            name=f"s{number}",
            cron="* * * * *",
            timezone="UTC",
            descriptor={"name": f"s{number}", "tests": []},
            params={},
            missed="once",
            enabled=True,
            next_fire_at=NOW,
            created_at=NOW,
            created_by="t",
        )


def job_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(jobs)).scalar_one())


async def test_several_hubs_start_each_fire_exactly_once(store: Store, db_url: str) -> None:
    await store.write(add_schedules)
    async with other_hubs(db_url, 2) as others:
        hubs = [store, *others]
        for minute in range(FIRES):
            now = NOW + timedelta(minutes=minute, seconds=1)

            async def fire(hub: Store, now: datetime = now) -> int:
                started = 0
                for _ in range(3):
                    fires = await hub.write(schedule_store.fire_due, now, 60.0, minute_later)
                    started += sum(1 for f in fires if f.job_id is not None)
                return started

            started = await asyncio.gather(*(fire(hub) for hub in hubs))
            assert sum(started) == SCHEDULES, started
    assert await store.read(job_count) == SCHEDULES * FIRES
