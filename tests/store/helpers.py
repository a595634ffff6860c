"""Building blocks for the store tests: agents with devices, jobs, a second hub, row counts."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from sqlalchemy import Connection, Table, func, select
from sqlalchemy.engine import make_url

from testfleet.protocol.states import JobState
from testfleet.store import Store
from testfleet.store import agents as agent_store
from testfleet.store import devices as device_store
from testfleet.store import jobs as job_store
from testfleet.store.records import DeviceRecord
from tests.store.conftest import CONNECT_TIMEOUT, postgres_server

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def add_agent(conn: Connection, name: str = "a1", slots: int = 3) -> int:
    """Register agent `name` with host slots `slot-0`...; returns its id."""
    agent = agent_store.register_agent(
        conn, name=name, instance_id="i-1", version="test", labels={}, hub="hub-a", now=NOW
    )
    offered = [
        device_store.DeviceOffer(name=f"slot-{i}", kind="host", capabilities={}, labels={})
        for i in range(slots)
    ]
    device_store.sync_devices(conn, agent.id, name, offered)
    return agent.id


def add_job(
    conn: Connection,
    name: str = "j",
    tags: Sequence[str] = (),
    requestor: str = "me",
    at: datetime = NOW,
) -> int:
    """Insert a queued job; returns its id."""
    return job_store.insert_job(
        conn,
        name=name,
        descriptor={"name": name},
        tags=list(tags),
        runs=1,
        requestor=requestor,
        now=at,
    )


def add_jobs(conn: Connection, count: int) -> list[int]:
    """Insert `count` queued jobs in one transaction; returns their ids in order."""
    return [add_job(conn) for _ in range(count)]


def set_running(conn: Connection, job_id: int, owner: str, lease_until: datetime) -> None:
    """Make a job one that `owner` runs, with its lease until `lease_until`."""
    job_store.update_job(
        conn, job_id, state=JobState.RUNNING, owner=owner, lease_expires_at=lease_until
    )


def count_rows(conn: Connection, table: Table) -> int:
    """How many rows `table` has."""
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def devices_by_id(conn: Connection) -> dict[str, DeviceRecord]:
    """Every device (removed ones too), by id."""
    return {d.id: d for d in device_store.list_devices(conn, include_removed=True)}


@asynccontextmanager
async def other_hubs(db_url: str, count: int) -> AsyncIterator[list[Store]]:
    """`count` more stores on the same database: other hubs, each with its own writer and
    transactions (SQLite: its own BEGIN IMMEDIATE connection; PostgreSQL: its own pool)."""
    hubs: list[Store] = []
    try:
        for _ in range(count):
            hubs.append(await Store.open(db_url, migrate=False))
        yield hubs
    finally:
        for hub in hubs:
            await hub.close()


_OPEN_SCRIPT = """
import asyncio, sys
from testfleet.store import Store

async def main(url: str, count: int) -> None:
    stores = await asyncio.gather(*(Store.open(url) for _ in range(count)))
    for store in stores:
        await store.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


@dataclass(frozen=True)
class Opened:
    """How one process that opened stores ended: its exit code (None: killed when it took
    longer than allowed) and what it wrote to stderr."""

    returncode: int | None
    stderr: str


async def open_in_processes(
    db_url: str, processes: int, stores_each: int, within: float
) -> list[Opened]:
    """Start `processes` Python processes at once, each opening `stores_each` stores on
    `db_url` concurrently (each open migrates); kill those still running after `within` s."""

    async def one() -> Opened:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _OPEN_SCRIPT,
            db_url,
            str(stores_each),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(within):
                _, err = await process.communicate()
        except TimeoutError:
            process.kill()
            _, err = await process.communicate()
            return Opened(None, err.decode(errors="replace"))
        return Opened(process.returncode, err.decode(errors="replace"))

    return list(await asyncio.gather(*(one() for _ in range(processes))))


async def drop_connections(db_url: str) -> None:
    """Terminate every connection to the test database (a PostgreSQL restart, say)."""
    admin = await asyncpg.connect(postgres_server(), timeout=CONNECT_TIMEOUT)
    try:
        await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
            make_url(db_url).database,
        )
    finally:
        await admin.close()
