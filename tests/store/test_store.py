"""The store on both backends: migrations, atomic claims, events once, listing, tokens."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, select
from sqlalchemy.exc import StatementError

from testfleet.protocol.states import DeviceState
from testfleet.store import Store, inventory
from testfleet.store import events as event_store
from testfleet.store import jobs as job_store
from testfleet.store import tokens as token_store
from testfleet.store.migrate import downgrade_to_base, upgrade_to_head
from testfleet.store.tables import events, metadata, tokens

T = TypeVar("T")
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def run(db_url: str, scenario: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store, run `scenario` on it, close it."""

    async def main() -> T:
        store = await Store.open(db_url)
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(main())


def add_agent(conn: Connection, name: str = "a1", slots: int = 3) -> int:
    row = inventory.register_agent(
        conn, name=name, instance_id="i", version="t", labels={}, hub="h", now=NOW
    )
    inventory.sync_devices(
        conn,
        row.id,
        name,
        [
            inventory.DeviceRow(
                id="", agent_id=row.id, name=f"slot-{i}", kind="host", capabilities={}, labels={}
            )
            for i in range(slots)
        ],
    )
    return int(row.id)


def add_job(
    conn: Connection,
    name: str = "j",
    tags: tuple[str, ...] = (),
    requestor: str = "me",
    at: datetime = NOW,
) -> int:
    return job_store.insert_job(
        conn,
        name=name,
        descriptor={"name": name},
        tags=list(tags),
        runs=1,
        requestor=requestor,
        now=at,
    )


def test_migrations_create_exactly_the_schema_and_undo_it(db_url: str) -> None:
    def diff(conn: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))

    def tables(conn: Connection) -> set[str]:
        return set(inspect(conn).get_table_names()) - {"alembic_version"}

    async def scenario(store: Store) -> None:
        assert await store.read(diff) == []
        assert await store.read(tables) == set(metadata.tables)
        await store.write(downgrade_to_base)
        assert await store.read(tables) == set()
        await store.write(upgrade_to_head)
        assert await store.read(diff) == []

    run(db_url, scenario)
    run(db_url, lambda store: store.ping())  # opening again is a no-op upgrade


def test_a_device_goes_to_one_claimer_only(db_url: str) -> None:
    async def scenario(store: Store) -> None:
        await store.write(add_agent)
        job_ids = [await store.write(add_job) for _ in range(20)]
        wanted = ["a1:slot-0", "a1:slot-1"]
        # A second store is a second hub: its own writer, its own transactions.
        other = await Store.open(db_url)
        try:
            results = await asyncio.gather(
                *(
                    (store if i % 2 else other).write(
                        inventory.claim_devices, wanted, job_id, NOW + timedelta(minutes=1)
                    )
                    for i, job_id in enumerate(job_ids)
                )
            )
        finally:
            await other.close()
        assert sum(results) == 1
        winner = job_ids[results.index(True)]
        loser = job_ids[results.index(False)]
        # A failed all-or-nothing claim took nothing.
        devices = {d.id: d for d in await store.read(inventory.list_devices)}
        assert {devices[i].holder_job_id for i in wanted} == {winner}
        assert devices["a1:slot-2"].state == DeviceState.FREE
        assert await store.write(inventory.release_devices, wanted, loser) == 0
        assert await store.write(inventory.release_devices, wanted, winner) == 2
        devices = {d.id: d for d in await store.read(inventory.list_devices)}
        assert all(devices[i].state == DeviceState.FREE for i in wanted)

    run(db_url, scenario)


def test_offline_device_stays_offline_and_expired_leases_come_back(db_url: str) -> None:
    async def scenario(store: Store) -> None:
        agent_id = await store.write(add_agent)
        job = await store.write(add_job)
        await store.write(inventory.claim_devices, ["a1:slot-0"], job, NOW - timedelta(seconds=1))
        await store.write(inventory.claim_devices, ["a1:slot-1"], job, NOW + timedelta(hours=1))
        expired = await store.write(inventory.expire_leases, NOW)
        assert [row.id for row in expired] == ["a1:slot-0"]
        await store.write(inventory.set_agent_offline, agent_id)
        await store.write(inventory.release_job_devices, job)
        states = {d.id: d.state for d in await store.read(inventory.list_devices)}
        assert set(states.values()) == {DeviceState.OFFLINE}

    run(db_url, scenario)


def test_an_agent_event_is_stored_once(db_url: str) -> None:
    def row(seq: int) -> dict[str, Any]:
        return {
            "kind": "log",
            "at": NOW,
            "agent_id": 1,
            "agent_seq": seq,
            "job_id": None,
            "task_id": None,
            "data": {"text": f"{seq}"},
        }

    def count(conn: Connection) -> int:
        return len(conn.execute(select(events.c.id)).all())

    async def scenario(store: Store) -> None:
        await store.write(add_agent)
        await store.write(event_store.add_agent_events, [row(1), row(2)])
        await store.write(event_store.add_agent_events, [row(2), row(3), row(1)])
        assert await store.read(count) == 3

    run(db_url, scenario)


def test_list_jobs_filters_and_pages(db_url: str) -> None:
    async def scenario(store: Store) -> None:
        ids = []
        for i in range(25):
            tags = ("nightly",) if i % 2 else ("nightly", "smoke")
            ids.append(
                await store.write(
                    add_job, f"job-{i % 3}", tags, f"user{i % 2}", NOW + timedelta(minutes=i)
                )
            )
        seen: list[int] = []
        cursor = None
        for _ in range(5):
            query = job_store.JobQuery(tags=["nightly"], limit=10, cursor=cursor)
            rows, cursor = await store.read(job_store.list_jobs, query)
            seen += [r.id for r in rows]
            if cursor is None:
                break
        assert seen == sorted(ids, reverse=True)
        both, _ = await store.read(
            job_store.list_jobs,
            job_store.JobQuery(
                tags=["nightly", "smoke"], requestor="user0", name="job-0", limit=100
            ),
        )
        assert [r.id for r in both] == [ids[i] for i in (24, 18, 12, 6, 0)]
        window, _ = await store.read(
            job_store.list_jobs,
            job_store.JobQuery(
                created_after=NOW + timedelta(minutes=5), created_before=NOW + timedelta(minutes=8)
            ),
        )
        assert [r.id for r in window] == [ids[7], ids[6], ids[5]]
        with pytest.raises(job_store.CursorError):
            await store.read(job_store.list_jobs, job_store.JobQuery(cursor="bogus"))

    run(db_url, scenario)


def test_jobs_are_claimed_once_and_orphans_are_taken_over(db_url: str) -> None:
    async def scenario(store: Store) -> None:
        ids = [await store.write(add_job) for _ in range(30)]
        lease = NOW + timedelta(seconds=15)
        other = await Store.open(db_url)
        try:
            first, second = await asyncio.gather(
                store.write(job_store.claim_jobs, "hub-a", NOW, lease, 20),
                other.write(job_store.claim_jobs, "hub-b", NOW, lease, 20),
            )
        finally:
            await other.close()
        claimed = [c.job_id for c in first + second]
        assert sorted(claimed) == ids  # every job once, none twice
        assert all(c.fresh and c.descriptor == {"name": "j"} for c in first + second)
        later = NOW + timedelta(seconds=5)
        none = await store.write(job_store.claim_jobs, "hub-c", later, later, 50, orphans=True)
        assert none == []  # the leases still run
        expired = NOW + timedelta(seconds=16)
        taken = await store.write(job_store.claim_jobs, "hub-c", expired, expired, 50, orphans=True)
        assert sorted(c.job_id for c in taken) == ids
        assert not any(c.fresh for c in taken)

    run(db_url, scenario)


def test_tokens_store_only_a_hash_and_revocation_is_final(db_url: str) -> None:
    def secrets(conn: Connection) -> list[str]:
        return [row.secret_hash for row in conn.execute(select(tokens))]

    async def scenario(store: Store) -> None:
        token_id, secret = await store.write(token_store.create_token, "ci", "operator", NOW)
        assert secret not in await store.read(secrets)
        found = await store.read(token_store.find_token, secret)
        assert found is not None and found.role == "operator"
        assert await store.write(token_store.revoke_token, token_id, NOW)
        assert await store.read(token_store.find_token, secret) is None
        assert not await store.write(token_store.revoke_token, token_id, NOW)

    run(db_url, scenario)


def test_times_come_back_aware_in_utc_and_naive_ones_are_refused(db_url: str) -> None:
    async def scenario(store: Store) -> None:
        job_id = await store.write(
            add_job, "t", (), "me", datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
        )
        job = await store.read(job_store.get_job, job_id)
        assert job.created_at == datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
        with pytest.raises(StatementError, match="naive"):
            await store.write(add_job, "t", (), "me", datetime(2026, 1, 2))

    run(db_url, scenario)


def test_a_failing_write_does_not_undo_the_others_in_its_batch(db_url: str) -> None:
    def boom(conn: Connection) -> None:
        add_job(conn, "doomed")
        raise RuntimeError("boom")

    def names(conn: Connection) -> list[str]:
        rows, _ = job_store.list_jobs(conn, job_store.JobQuery(limit=100))
        return sorted(r.name for r in rows)

    async def scenario(store: Store) -> None:
        results = await asyncio.gather(
            store.write(add_job, "a"),
            store.write(boom),
            store.write(add_job, "b"),
            return_exceptions=True,
        )
        assert isinstance(results[1], RuntimeError)
        assert await store.read(names) == ["a", "b"]

    run(db_url, scenario)
