"""Agents: registration, liveness and their event sequence numbers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select, update

from testfleet.protocol.states import AgentState
from testfleet.store.prepared import prepared
from testfleet.store.records import AgentRecord
from testfleet.store.tables import agents


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
    existing = conn.execute(select(agents.c.id).where(agents.c.name == name)).first()
    values = dict(
        instance_id=instance_id,
        version=version,
        labels=labels,
        hub=hub,
        state=AgentState.ONLINE,
        connected_at=now,
        last_seen=now,
    )
    if existing is None:
        conn.execute(insert(agents).values(name=name, last_seq=0, **values))
    else:
        conn.execute(update(agents).where(agents.c.id == existing.id).values(**values))
    return AgentRecord.from_row(conn.execute(select(agents).where(agents.c.name == name)).one())


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
