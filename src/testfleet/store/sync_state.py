"""The sync service's shared state on PostgreSQL: counters of states and topics, the keys
of entries, the messages of topics. Plain asyncpg (the sync service's hot path: a batch is a
handful of round trips and one COPY).

Each batch of signals (or publishes) of one state (or topic) is one transaction: the counter
row is locked first, so keys already counted are found without a race, new ones get the next
sequence numbers, and every hub hears `run<TAB>kind<TAB>name<TAB>value` on channel
`testfleet_sync` when it commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

CHANNEL = "testfleet_sync"
STATE = "state"
TOPIC = "topic"
_NOW = "(now() AT TIME ZONE 'utc')"  # the store keeps naive UTC times
_LOCK = f"""
INSERT INTO sync_counters (run_id, kind, name, value, updated_at) VALUES ($1, $2, $3, 0, {_NOW})
ON CONFLICT (run_id, kind, name) DO UPDATE SET updated_at = excluded.updated_at
RETURNING value"""
_STORE = """
WITH moved AS (
  UPDATE sync_counters SET value = $4 WHERE run_id = $1 AND kind = $2 AND name = $3 RETURNING 1
)
SELECT pg_notify($5, $1 || chr(9) || $2 || chr(9) || $3 || chr(9) || $4::text) FROM moved"""


async def _store_counter(
    conn: asyncpg.Connection, run_id: str, kind: str, name: str, value: int
) -> None:
    await conn.execute(_STORE, run_id, kind, name, value, CHANNEL)


def _assign(keys: Sequence[str | None], known: dict[str, int], value: int) -> tuple[list[int], int]:
    """Sequence numbers for `keys` in order: a known key keeps its number, others count on
    (and become known)."""
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


async def signal_entries(
    conn: asyncpg.Connection, run_id: str, state: str, keys: Sequence[str | None]
) -> tuple[list[int], int]:
    """Count entries into `state`; each one's sequence number and the new count."""
    async with conn.transaction():
        value = int(await conn.fetchval(_LOCK, run_id, STATE, state))
        wanted = [k for k in keys if k is not None]
        known: dict[str, int] = {}
        if wanted:
            rows = await conn.fetch(
                "SELECT key, seq FROM sync_entries WHERE run_id = $1 AND state = $2 "
                "AND key = ANY($3::text[])",
                run_id,
                state,
                wanted,
            )
            known = {row["key"]: int(row["seq"]) for row in rows}
        before = set(known)
        seqs, new_value = _assign(keys, known, value)
        fresh = [(run_id, state, k, s) for k, s in known.items() if k not in before]
        if fresh:
            await conn.copy_records_to_table(
                "sync_entries", records=fresh, columns=["run_id", "state", "key", "seq"]
            )
        if new_value != value:
            await _store_counter(conn, run_id, STATE, state, new_value)
        return seqs, new_value


async def publish_messages(
    conn: asyncpg.Connection, run_id: str, topic: str, items: Sequence[tuple[str | None, str]]
) -> list[int]:
    """Append `(key, payload JSON)` items to `topic`; each one's sequence number."""
    async with conn.transaction():
        value = int(await conn.fetchval(_LOCK, run_id, TOPIC, topic))
        wanted = [key for key, _ in items if key is not None]
        known: dict[str, int] = {}
        if wanted:
            rows = await conn.fetch(
                "SELECT key, seq FROM sync_messages WHERE run_id = $1 AND topic = $2 "
                "AND key = ANY($3::text[])",
                run_id,
                topic,
                wanted,
            )
            known = {row["key"]: int(row["seq"]) for row in rows}
        seqs: list[int] = []
        fresh = []
        for key, payload in items:
            if key is not None and key in known:
                seqs.append(known[key])
                continue
            value += 1
            seqs.append(value)
            if key is not None:
                known[key] = value
            fresh.append((run_id, topic, value, key, payload))
        if fresh:
            await conn.copy_records_to_table(
                "sync_messages",
                records=fresh,
                columns=["run_id", "topic", "seq", "key", "payload"],
            )
            await _store_counter(conn, run_id, TOPIC, topic, value)
        return seqs


async def counter(conn: asyncpg.Connection, run_id: str, kind: str, name: str) -> int:
    """A state's count or a topic's last sequence number (0 when unknown)."""
    value = await conn.fetchval(
        "SELECT value FROM sync_counters WHERE run_id = $1 AND kind = $2 AND name = $3",
        run_id,
        kind,
        name,
    )
    return int(value or 0)


async def read_messages(
    conn: asyncpg.Connection, run_id: str, topic: str, after: int, limit: int
) -> list[tuple[int, str]]:
    """A topic's messages after sequence number `after`, in order: (seq, payload JSON)."""
    rows = await conn.fetch(
        "SELECT seq, payload FROM sync_messages WHERE run_id = $1 AND topic = $2 AND seq > $3 "
        "ORDER BY seq LIMIT $4",
        run_id,
        topic,
        after,
        limit,
    )
    return [(int(row["seq"]), row["payload"]) for row in rows]


async def counters_of(conn: asyncpg.Connection, run_id: str) -> list[tuple[str, str, int]]:
    """Every counter of a run: (kind, name, value)."""
    rows = await conn.fetch(
        "SELECT kind, name, value FROM sync_counters WHERE run_id = $1 ORDER BY kind, name",
        run_id,
    )
    return [(row["kind"], row["name"], int(row["value"])) for row in rows]


async def drop_run(conn: asyncpg.Connection, run_id: str) -> None:
    """Forget a run's sync state."""
    async with conn.transaction():
        for table in ("sync_entries", "sync_messages", "sync_counters"):
            await conn.execute(f"DELETE FROM {table} WHERE run_id = $1", run_id)


async def idle_runs(conn: asyncpg.Connection, before: datetime) -> list[str]:
    """Runs whose sync state has not changed since `before` (naive UTC)."""
    rows = await conn.fetch(
        "SELECT run_id FROM sync_counters GROUP BY run_id HAVING max(updated_at) < $1",
        before.replace(tzinfo=None),
    )
    return [row["run_id"] for row in rows]
