"""The sync service's shared state: counters of states and topics, entries and messages.

Each batch of signals (or publishes) of one state (or topic) is one transaction: the
counter row is locked first, so keys already counted are found without a race, new ones get
the next sequence numbers, and on PostgreSQL every hub hears `run<TAB>kind<TAB>name<TAB>value`
on channel `testfleet_sync` when it commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from testfleet.store.tables import sync_counters, sync_entries, sync_messages

CHANNEL = "testfleet_sync"
STATE = "state"
TOPIC = "topic"


def _lock_counter(conn: Connection, run_id: str, kind: str, name: str, now: datetime) -> int:
    """The counter's value, its row created if missing and locked until the commit."""
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(sync_counters).values(
        run_id=run_id, kind=kind, name=name, value=0, updated_at=now
    )
    statement = statement.on_conflict_do_update(
        index_elements=["run_id", "kind", "name"], set_={"updated_at": now}
    ).returning(sync_counters.c.value)
    return int(conn.execute(statement).scalar_one())


def _store_counter(conn: Connection, run_id: str, kind: str, name: str, value: int) -> None:
    conn.execute(
        update(sync_counters)
        .where(
            sync_counters.c.run_id == run_id,
            sync_counters.c.kind == kind,
            sync_counters.c.name == name,
        )
        .values(value=value)
    )
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": CHANNEL, "payload": f"{run_id}\t{kind}\t{name}\t{value}"},
        )


def _assign(keys: Sequence[str | None], known: dict[str, int], value: int) -> tuple[list[int], int]:
    """Sequence numbers for `keys` in order: a known key keeps its number, others count on."""
    seqs: list[int] = []
    for key in keys:
        if key is not None and key in known:
            seqs.append(known[key])
            continue
        value += 1
        seqs.append(value)
        if key is not None:
            known[key] = value
    return seqs, value


def signal_entries(
    conn: Connection, run_id: str, state: str, keys: Sequence[str | None], now: datetime
) -> tuple[list[int], int]:
    """Count entries into `state`; returns each one's sequence number and the new count."""
    value = _lock_counter(conn, run_id, STATE, state, now)
    wanted = [k for k in keys if k is not None]
    known: dict[str, int] = {}
    if wanted:
        rows = conn.execute(
            select(sync_entries.c.key, sync_entries.c.seq).where(
                sync_entries.c.run_id == run_id,
                sync_entries.c.state == state,
                sync_entries.c.key.in_(wanted),
            )
        )
        known = {row.key: int(row.seq) for row in rows}
    before = dict(known)
    seqs, new_value = _assign(keys, known, value)
    fresh = [
        {"run_id": run_id, "state": state, "key": k, "seq": s}
        for k, s in known.items()
        if k not in before
    ]
    if fresh:
        conn.execute(sync_entries.insert(), fresh)
    if new_value != value:
        _store_counter(conn, run_id, STATE, state, new_value)
    return seqs, new_value


def publish_messages(
    conn: Connection,
    run_id: str,
    topic: str,
    items: Sequence[tuple[str | None, str]],
    now: datetime,
) -> list[int]:
    """Append `(key, payload JSON)` items to `topic`; returns each one's sequence number."""
    value = _lock_counter(conn, run_id, TOPIC, topic, now)
    wanted = [key for key, _ in items if key is not None]
    known: dict[str, int] = {}
    if wanted:
        rows = conn.execute(
            select(sync_messages.c.key, sync_messages.c.seq).where(
                sync_messages.c.run_id == run_id,
                sync_messages.c.topic == topic,
                sync_messages.c.key.in_(wanted),
            )
        )
        known = {row.key: int(row.seq) for row in rows}
    seqs: list[int] = []
    fresh: list[dict[str, Any]] = []
    for key, payload in items:
        if key is not None and key in known:
            seqs.append(known[key])
            continue
        value += 1
        seqs.append(value)
        if key is not None:
            known[key] = value
        fresh.append(
            {"run_id": run_id, "topic": topic, "seq": value, "key": key, "payload": payload}
        )
    if fresh:
        conn.execute(sync_messages.insert(), fresh)
        _store_counter(conn, run_id, TOPIC, topic, value)
    return seqs


def counter(conn: Connection, run_id: str, kind: str, name: str) -> int:
    """A state's count or a topic's last sequence number (0 when unknown)."""
    value = conn.execute(
        select(sync_counters.c.value).where(
            sync_counters.c.run_id == run_id,
            sync_counters.c.kind == kind,
            sync_counters.c.name == name,
        )
    ).scalar_one_or_none()
    return int(value or 0)


def read_messages(
    conn: Connection, run_id: str, topic: str, after: int, limit: int
) -> list[tuple[int, str]]:
    """A topic's messages after sequence number `after`, in order: (seq, payload JSON)."""
    rows = conn.execute(
        select(sync_messages.c.seq, sync_messages.c.payload)
        .where(
            sync_messages.c.run_id == run_id,
            sync_messages.c.topic == topic,
            sync_messages.c.seq > after,
        )
        .order_by(sync_messages.c.seq)
        .limit(limit)
    )
    return [(int(row.seq), row.payload) for row in rows]


def counters_of(conn: Connection, run_id: str) -> list[tuple[str, str, int]]:
    """Every counter of a run: (kind, name, value)."""
    rows = conn.execute(
        select(sync_counters.c.kind, sync_counters.c.name, sync_counters.c.value)
        .where(sync_counters.c.run_id == run_id)
        .order_by(sync_counters.c.kind, sync_counters.c.name)
    )
    return [(row.kind, row.name, int(row.value)) for row in rows]


def drop_run(conn: Connection, run_id: str) -> None:
    """Forget a run's sync state."""
    for table in (sync_entries, sync_messages, sync_counters):
        conn.execute(delete(table).where(table.c.run_id == run_id))


def idle_runs(conn: Connection, before: datetime) -> list[str]:
    """Runs whose sync state has not changed since `before`."""
    rows = conn.execute(
        select(sync_counters.c.run_id)
        .group_by(sync_counters.c.run_id)
        .having(func.max(sync_counters.c.updated_at) < before)
    )
    return [row.run_id for row in rows]
