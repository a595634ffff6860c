"""The webhook queue on SQLite and PostgreSQL: events fan out to one delivery per webhook and
event, and with several hubs each delivery is claimed by one hub only."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import Connection, func, select

from testfleet.protocol.states import JobState
from testfleet.store import Store
from testfleet.store import jobs as job_store
from testfleet.store import webhook_queue as queue
from testfleet.store import webhooks as webhook_store
from testfleet.store.events import add_events, event_row
from testfleet.store.tables import webhook_deliveries
from tests.store.helpers import NOW, add_job, other_hubs

pytestmark = pytest.mark.anyio
JOBS = 40


def finish_jobs(conn: Connection, count: int, state: JobState = JobState.FAILED) -> None:
    for _ in range(count):
        job_id = add_job(conn, tags=["nightly"])
        job_store.update_job(conn, job_id, state=state, ended_at=NOW)
        add_events(conn, [event_row("job_finished", NOW, job_id=job_id, data={"state": state})])


def add_hook(conn: Connection, events: list[str], tags: list[str] = ()) -> int:  # type: ignore[assignment]
    hook = webhook_store.create_webhook(
        conn,
        url="http://127.0.0.1:9/h",
        secret="x" * 20,
        events=events,
        tags=list(tags),
        description="",
        active=True,
        created_by="t",
        now=NOW,
    )
    return hook.id


def delivery_count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(webhook_deliveries)).scalar_one())


async def test_events_fan_out_once_from_the_cursor_on(store: Store) -> None:
    await store.write(finish_jobs, 3)  # before the first fan-out: history, not delivered
    assert await store.write(queue.fan_out, NOW) == 0
    await store.write(add_hook, ["job.finished", "job.failed"])
    await store.write(add_hook, ["job.finished"], ["weekly"])
    await store.write(finish_jobs, 2)
    assert await store.write(queue.fan_out, NOW) == 4  # finished + failed, for two jobs
    assert await store.write(queue.fan_out, NOW) == 0
    assert await store.read(delivery_count) == 4


async def test_several_hubs_fan_out_and_claim_each_delivery_once(store: Store, db_url: str) -> None:
    await store.write(queue.fan_out, NOW)
    await store.write(add_hook, ["job.failed"])
    await store.write(add_hook, ["job.finished"])
    async with other_hubs(db_url, 2) as (second, third):
        hubs = [store, second, third]

        async def finish_and_fan_out(hub: Store, rounds: int) -> None:
            for _ in range(rounds):
                await hub.write(finish_jobs, 2)
                await hub.write(queue.fan_out, NOW)

        await asyncio.gather(*(finish_and_fan_out(hub, JOBS // 6) for hub in hubs))
        for hub in hubs:
            await hub.write(queue.fan_out, NOW)
        expected = 2 * 2 * (JOBS // 6) * 3
        assert await store.read(delivery_count) == expected

        async def claim_all(hub: Store, name: str) -> list[int]:
            got: list[int] = []
            while True:
                claimed = await hub.write(
                    queue.claim_due, name, NOW, NOW + timedelta(seconds=60), 7, {}, 1000
                )
                if not claimed:
                    return got
                got += [item.delivery.id for item in claimed]

        claims = await asyncio.gather(*(claim_all(h, f"hub-{i}") for i, h in enumerate(hubs)))
        everything = [delivery for claimed in claims for delivery in claimed]
        assert len(everything) == expected and len(set(everything)) == expected


async def test_a_claim_left_by_a_dead_hub_is_taken_over_after_its_lease(store: Store) -> None:
    await store.write(queue.fan_out, NOW)
    await store.write(add_hook, ["job.failed"])
    await store.write(finish_jobs, 1)
    await store.write(queue.fan_out, NOW)
    lease = NOW + timedelta(seconds=60)
    [first] = await store.write(queue.claim_due, "dead", NOW, lease, 10)
    assert await store.write(queue.claim_due, "alive", NOW, lease, 10) == []
    later = lease + timedelta(seconds=1)
    [again] = await store.write(queue.claim_due, "alive", later, later + timedelta(seconds=60), 10)
    assert again.delivery.id == first.delivery.id
    result = queue.AttemptResult(later, 12.0, 200, None, True, None)
    await store.write(queue.record_attempt, again.delivery.id, "alive", result)
    [(delivery, attempts)] = await store.read(
        webhook_store.list_deliveries, first.delivery.webhook_id
    )
    assert delivery.state == "delivered" and [a.hub for a in attempts] == ["alive"]
