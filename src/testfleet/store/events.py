"""Events: append-only, numbered; an agent's event (agent, seq) is stored once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from testfleet.store.tables import events


async def add_event(
    conn: AsyncConnection,
    kind: str,
    at: datetime,
    *,
    job_id: int | None = None,
    task_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> int:
    """Append a hub event; returns its id."""
    result = await conn.execute(
        insert(events).values(kind=kind, at=at, job_id=job_id, task_id=task_id, data=data or {})
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


async def add_agent_event(
    conn: AsyncConnection,
    kind: str,
    at: datetime,
    *,
    agent_id: int,
    seq: int,
    job_id: int | None,
    task_id: int | None,
    data: dict[str, Any],
) -> bool:
    """Append an agent's event unless (agent_id, seq) is stored already; True if it was new."""
    values = dict(
        kind=kind,
        at=at,
        agent_id=agent_id,
        agent_seq=seq,
        job_id=job_id,
        task_id=task_id,
        data=data,
    )
    dialect = conn.dialect.name
    statement: Any
    if dialect == "postgresql":
        statement = postgresql.insert(events).values(**values).on_conflict_do_nothing()
    else:
        statement = sqlite.insert(events).values(**values).on_conflict_do_nothing()
    result = await conn.execute(statement.returning(events.c.id))
    return result.first() is not None


async def list_events(
    conn: AsyncConnection,
    job_id: int,
    *,
    after: int = 0,
    limit: int = 500,
    kinds: Sequence[str] = (),
) -> Sequence[Row[Any]]:
    """A job's events with id > `after`, oldest first."""
    query = (
        select(events)
        .where(events.c.job_id == job_id, events.c.id > after)
        .order_by(events.c.id)
        .limit(limit)
    )
    if kinds:
        query = query.where(events.c.kind.in_(kinds))
    return (await conn.execute(query)).all()


async def count_events(conn: AsyncConnection, job_id: int, kind: str | None = None) -> int:
    """How many events a job has (of one kind, if given)."""
    query = select(func.count()).select_from(events).where(events.c.job_id == job_id)
    if kind:
        query = query.where(events.c.kind == kind)
    return int((await conn.execute(query)).scalar_one())


async def log_chunks(
    conn: AsyncConnection,
    job_id: int,
    *,
    task_id: int | None = None,
    step: int | None = None,
    after: int = 0,
    limit: int = 10_000,
) -> Sequence[Any]:
    """A job's log events in order, optionally of one task and step."""
    query = (
        select(events.c.id, events.c.task_id, events.c.data)
        .where(events.c.job_id == job_id, events.c.kind == "log", events.c.id > after)
        .order_by(events.c.id)
        .limit(limit)
    )
    if task_id is not None:
        query = query.where(events.c.task_id == task_id)
    rows: Sequence[Any] = (await conn.execute(query)).all()
    if step is not None:
        rows = [row for row in rows if row.data.get("step_index") == step]
    return rows
