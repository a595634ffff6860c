"""Agents: registration, liveness and their event sequence numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from testfleet.protocol.states import AgentState
from testfleet.store.prepared import prepared
from testfleet.store.records import AgentRecord
from testfleet.store.tables import agents


@dataclass(frozen=True)
class Arrival:
    """An agent registering: who it says it is."""

    name: str
    instance_id: str
    version: str
    labels: dict[str, str]


def register_agent(
    conn: Connection,
    *,
    name: str,
    instance_id: str,
    version: str,
    labels: dict[str, str],
    hub: str,
    now: datetime,
) -> AgentRecord:
    """Create or update the agent and mark it online (connected to `hub`)."""
    arrival = Arrival(name, instance_id, version, labels)
    return register_agents(conn, [arrival], hub=hub, now=now)[name]


def register_agents(
    conn: Connection, arrivals: Sequence[Arrival], *, hub: str, now: datetime
) -> dict[str, AgentRecord]:
    """Create or update the agents (distinct names, a few hundred at most) and mark them
    online (connected to `hub`), in a handful of statements whatever their number."""
    names = [arrival.name for arrival in arrivals]
    existing = {
        row.name: row.id
        for row in conn.execute(select(agents.c.id, agents.c.name).where(agents.c.name.in_(names)))
    }

    def values(arrival: Arrival) -> dict[str, Any]:
        return {
            "instance_id": arrival.instance_id,
            "version": arrival.version,
            "labels": arrival.labels,
            "hub": hub,
            "state": AgentState.ONLINE,
            "connected_at": now,
            "last_seen": now,
        }

    new = [{"name": a.name, "last_seq": 0, **values(a)} for a in arrivals if a.name not in existing]
    if new:
        conn.execute(insert(agents), new)
    known = [
        {"b_id": existing[a.name], **{f"b_{key}": value for key, value in values(a).items()}}
        for a in arrivals
        if a.name in existing
    ]
    if known:
        statement = prepared(
            "register_agents",
            lambda: (
                update(agents)
                .where(agents.c.id == bindparam("b_id"))
                .values({column: bindparam(f"b_{column}") for column in _ARRIVAL_COLUMNS})
            ),
        )
        conn.execute(statement, known)
    rows = conn.execute(select(agents).where(agents.c.name.in_(names)))
    return {row.name: AgentRecord.from_row(row) for row in rows}


_ARRIVAL_COLUMNS = ("instance_id", "version", "labels", "hub", "state", "connected_at", "last_seen")


def set_agent_offline(conn: Connection, agent_id: int) -> None:
    """The agent is judged gone: offline. Its `hub` stays: were that hub still to hear from
    it, it restores the agent (`hubs.marked_lost_here`)."""
    conn.execute(update(agents).where(agents.c.id == agent_id).values(state=AgentState.OFFLINE))


def get_last_seq(conn: Connection, agent_id: int) -> int:
    """The agent's highest stored event seq.

    Not locked: two transactions storing the same events at once (an agent's old and new
    connection, on two writers or two hubs) both insert them, and the second insert skips
    them (ON CONFLICT DO NOTHING), while the state updates they make are conditional. A lock
    here took part in deadlocks between writer batches.
    """
    statement = prepared(
        "get_last_seq",
        lambda: select(agents.c.last_seq).where(agents.c.id == bindparam("agent_id")),
    )
    return int(conn.execute(statement, {"agent_id": agent_id}).scalar() or 0)


def set_last_seq(conn: Connection, agent_id: int, seq: int, seen_at: datetime) -> None:
    """Raise the agent's highest stored event seq to `seq`; it was heard from at `seen_at`."""
    statement = prepared(
        "set_last_seq",
        lambda: (
            update(agents)
            .where(agents.c.id == bindparam("agent_id"), agents.c.last_seq < bindparam("seq"))
            .values(last_seq=bindparam("seq"), last_seen=bindparam("seen"))
        ),
    )
    conn.execute(statement, {"agent_id": agent_id, "seq": seq, "seen": seen_at})


def list_agents(conn: Connection) -> list[AgentRecord]:
    """Every agent by name."""
    return [
        AgentRecord.from_row(row) for row in conn.execute(select(agents).order_by(agents.c.name))
    ]


def get_agent(conn: Connection, agent_id: int, *, lock: bool = False) -> AgentRecord | None:
    """One agent by id; `lock` keeps other writers off its row until the transaction ends."""
    query = select(agents).where(agents.c.id == agent_id)
    if lock:
        query = query.with_for_update(key_share=True)
    row = conn.execute(query).first()
    return AgentRecord.from_row(row) if row is not None else None
