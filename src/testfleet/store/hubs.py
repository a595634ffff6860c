"""Hubs' heartbeats: a hub's agents are judged lost by the other hubs only once the hub
itself has stopped beating (one slow hub never makes another declare its agents lost)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from testfleet.protocol.states import AgentState, DeviceState
from testfleet.store.tables import agents, devices, hubs

PAGE = 500


def beat(conn: Connection, server_id: str, now: datetime) -> None:
    """This hub is alive at `now`."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(hubs).values(server_id=server_id, started_at=now, heartbeat_at=now)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[hubs.c.server_id], set_={"heartbeat_at": now}
        )
    )


def hub_alive(conn: Connection, server_id: str | None, since: datetime) -> bool:
    """Whether hub `server_id` has beaten since `since`."""
    if server_id is None:
        return False
    query = select(hubs.c.server_id).where(
        hubs.c.server_id == server_id, hubs.c.heartbeat_at >= since
    )
    return conn.execute(query).first() is not None


def agents_of_silent_hubs(conn: Connection, since: datetime) -> list[tuple[int, str | None]]:
    """Online agents (a page of them) whose hub has not beaten since `since`, or has no row,
    with that hub's id."""
    alive = select(hubs.c.server_id).where(hubs.c.heartbeat_at >= since)
    query = (
        select(agents.c.id, agents.c.hub)
        .where(
            agents.c.state == AgentState.ONLINE,
            or_(agents.c.hub.is_(None), agents.c.hub.not_in(alive)),
        )
        .order_by(agents.c.id)
        .limit(PAGE)
    )
    return [(int(row.id), row.hub) for row in conn.execute(query)]


def marked_lost_here(conn: Connection, server_id: str) -> list[int]:
    """Agents connected to hub `server_id` (as far as the store knows) but marked offline:
    another hub judged them lost; this hub, which still hears them, restores them."""
    query = (
        select(agents.c.id)
        .where(agents.c.hub == server_id, agents.c.state == AgentState.OFFLINE)
        .limit(PAGE)
    )
    return [int(agent_id) for agent_id in conn.execute(query).scalars()]


def restore_agent(conn: Connection, agent_id: int, server_id: str, now: datetime) -> None:
    """An agent judged lost is heard from here: online again, with its offered devices."""
    conn.execute(
        update(agents)
        .where(agents.c.id == agent_id)
        .values(state=AgentState.ONLINE, hub=server_id, last_seen=now)
    )
    conn.execute(
        update(devices)
        .where(
            and_(
                devices.c.agent_id == agent_id,
                devices.c.removed.is_(False),
                devices.c.state == DeviceState.OFFLINE,
            )
        )
        .values(
            state=case(
                (devices.c.holder_job_id.is_(None), DeviceState.FREE), else_=DeviceState.BUSY
            ),
            changed_at=now,
        )
    )


def online_agents_of(conn: Connection, server_id: str, after_id: int = 0) -> list[int]:
    """A page of the agents the store holds online on hub `server_id`, by id."""
    query = (
        select(agents.c.id)
        .where(
            agents.c.hub == server_id, agents.c.state == AgentState.ONLINE, agents.c.id > after_id
        )
        .order_by(agents.c.id)
        .limit(PAGE)
    )
    return [int(agent_id) for agent_id in conn.execute(query).scalars()]
