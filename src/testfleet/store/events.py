"""Events: append-only, numbered; an agent's event (agent, seq) is stored once.

Readers follow a job with "events after id N", so ids must become visible in order: a
transaction may not commit event 101 while another still holds 100 uncommitted, or a reader
would skip 100 for good. On SQLite one writer at a time guarantees it. On PostgreSQL, where
several writers (and several hubs) commit at once, every transaction inserts its events last,
under a transaction-scoped advisory lock held until it commits: only that tail is serialized.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from testfleet.store.prepared import prepared
from testfleet.store.records import LogChunkRecord, StoredEvent
from testfleet.store.tables import agents, events


def event_row(
    kind: str,
    at: datetime,
    *,
    job_id: int | None = None,
    task_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One hub event, for `add_events`."""
    return {
        "kind": kind,
        "at": at,
        "job_id": job_id,
        "task_id": task_id,
        "data": data or {},
        "agent_id": None,
        "agent_seq": None,
    }


_PENDING = "testfleet.pending_events"
EVENT_ORDER_LOCK_ID = 0x7465737467  # PostgreSQL advisory lock: event ids commit in order


def add_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Append events: hub events (rows from `event_row`) or an agent's (with agent_id and
    agent_seq; one already stored, before or earlier in the transaction, is skipped). Inside
    `Store.write` they are inserted together just before the transaction commits."""
    if rows:
        conn.info.setdefault(_PENDING, []).extend(rows)


def pending_mark(conn: Connection) -> int:
    """How many events this transaction has added so far (see `discard_since`)."""
    return len(conn.info.get(_PENDING, ()))


def discard_since(conn: Connection, mark: int) -> None:
    """Forget the events added after `mark` (their rows were rolled back to a savepoint)."""
    pending = conn.info.get(_PENDING)
    if pending is not None:
        del pending[mark:]


def discard_pending_events(conn: Connection) -> None:
    """Forget events added in a transaction that is being rolled back (or starts afresh)."""
    conn.info.pop(_PENDING, None)


def flush_events(conn: Connection) -> None:
    """Insert the events added in this transaction so far: the transaction's last statement.

    Hub events have no agent_seq, so "do nothing on conflict" only ever skips an agent's
    event that is already stored.
    """
    rows = conn.info.pop(_PENDING, None)
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    if dialect is postgresql:
        conn.execute(_ORDER_LOCK)
    statement = prepared(
        ("insert_events", dialect.__name__),
        lambda: dialect.insert(events).on_conflict_do_nothing(),
    )
    conn.execute(statement, rows)


_ORDER_LOCK = text(f"SELECT pg_advisory_xact_lock({EVENT_ORDER_LOCK_ID})")


def list_events(
    conn: Connection,
    job_id: int,
    *,
    after: int = 0,
    limit: int = 500,
    kinds: Sequence[str] = (),
    task_id: int | None = None,
    last: bool = False,
) -> list[StoredEvent]:
    """A job's events with id > `after`, oldest first, with the sending agent's name; with
    `last`, the newest `limit` of them (still oldest first)."""
    query = (
        select(events, agents.c.name.label("agent_name"))
        .outerjoin(agents, agents.c.id == events.c.agent_id)
        .where(events.c.job_id == job_id, events.c.id > after)
        .order_by(events.c.id.desc() if last else events.c.id)
        .limit(limit)
    )
    if kinds:
        query = query.where(events.c.kind.in_(kinds))
    if task_id is not None:
        query = query.where(events.c.task_id == task_id)
    found = [StoredEvent.from_row(row) for row in conn.execute(query)]
    return found[::-1] if last else found


def last_event_id(conn: Connection, job_id: int) -> int:
    """The id of the job's newest event (0 if it has none)."""
    query = select(func.max(events.c.id)).where(events.c.job_id == job_id)
    return int(conn.execute(query).scalar() or 0)


def log_chunks(
    conn: Connection,
    job_id: int,
    *,
    task_id: int | None = None,
    step: int | None = None,
    after: int = 0,
    limit: int = 10_000,
) -> list[LogChunkRecord]:
    """A job's log events in order, optionally of one task and step."""
    query = (
        select(events.c.id, events.c.task_id, events.c.data)
        .where(events.c.job_id == job_id, events.c.kind == "log", events.c.id > after)
        .order_by(events.c.id)
        .limit(limit)
    )
    if task_id is not None:
        query = query.where(events.c.task_id == task_id)
    chunks = [
        LogChunkRecord(
            id=row.id,
            task_id=row.task_id,
            step_index=(row.data or {}).get("step_index"),
            text=(row.data or {}).get("text", ""),
        )
        for row in conn.execute(query)
    ]
    if step is not None:
        chunks = [chunk for chunk in chunks if chunk.step_index == step]
    return chunks
