"""Events: append-only, numbered; an agent's event (agent, seq) is stored once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from testfleet.store.prepared import prepared
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


def add_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Append events (rows from `event_row`). Inside `Store.write` they are inserted together,
    in one statement, just before the transaction commits."""
    if rows:
        conn.info.setdefault(_PENDING, []).extend(rows)


def discard_pending_events(conn: Connection) -> None:
    """Forget events added in a transaction that is being rolled back (or starts afresh)."""
    conn.info.pop(_PENDING, None)


def flush_events(conn: Connection) -> None:
    """Insert the events added in this transaction so far."""
    rows = conn.info.pop(_PENDING, None)
    if rows:
        conn.execute(prepared("insert_events", lambda: insert(events)), rows)


def add_agent_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Append agent events (with agent_id and agent_seq); ones already stored are skipped."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = prepared(
        ("insert_agent_events", dialect.__name__),
        lambda: dialect.insert(events).on_conflict_do_nothing(),
    )
    conn.execute(statement, list(rows))


def list_events(
    conn: Connection,
    job_id: int,
    *,
    after: int = 0,
    limit: int = 500,
    kinds: Sequence[str] = (),
) -> Sequence[Row[Any]]:
    """A job's events with id > `after`, oldest first, with the sending agent's name."""
    query = (
        select(events, agents.c.name.label("agent_name"))
        .outerjoin(agents, agents.c.id == events.c.agent_id)
        .where(events.c.job_id == job_id, events.c.id > after)
        .order_by(events.c.id)
        .limit(limit)
    )
    if kinds:
        query = query.where(events.c.kind.in_(kinds))
    return (conn.execute(query)).all()


def log_chunks(
    conn: Connection,
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
    rows: Sequence[Any] = (conn.execute(query)).all()
    if step is not None:
        rows = [row for row in rows if row.data.get("step_index") == step]
    return rows
