"""Agents and their devices, and the claims (leases) jobs hold on devices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, case, insert, select, update

from testfleet.protocol.states import AgentState, DeviceState
from testfleet.store.prepared import prepared
from testfleet.store.tables import agents, devices, tasks


@dataclass(frozen=True)
class DeviceRow:
    """What the inventory holds of one device."""

    id: str
    agent_id: int
    name: str
    kind: str
    capabilities: dict[str, Any]
    labels: dict[str, str]


def device_id(agent_name: str, device_name: str) -> str:
    """Devices are named by their agent: `agent:device`."""
    return f"{agent_name}:{device_name}"


def register_agent(
    conn: Connection,
    *,
    name: str,
    instance_id: str,
    version: str,
    labels: dict[str, str],
    hub: str,
    now: datetime,
) -> Row[Any]:
    """Create or update the agent row and mark it online; returns the row."""
    existing = (conn.execute(select(agents).where(agents.c.name == name))).first()
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
    return (conn.execute(select(agents).where(agents.c.name == name))).one()


def sync_devices(
    conn: Connection, agent_id: int, agent_name: str, offered: Iterable[DeviceRow]
) -> None:
    """Make the agent's devices the `offered` ones: new ones added, missing ones removed.

    A device still claimed by a job stays busy; the others become free.
    """
    current = {
        row.name: row
        for row in (conn.execute(select(devices).where(devices.c.agent_id == agent_id)))
    }
    seen: set[str] = set()
    for device in offered:
        seen.add(device.name)
        row = current.get(device.name)
        if row is None:
            conn.execute(
                insert(devices).values(
                    id=device_id(agent_name, device.name),
                    agent_id=agent_id,
                    name=device.name,
                    kind=device.kind,
                    capabilities=device.capabilities,
                    labels=device.labels,
                    state=DeviceState.FREE,
                    removed=False,
                )
            )
            continue
        state = DeviceState.BUSY if row.holder_job_id is not None else DeviceState.FREE
        conn.execute(
            update(devices)
            .where(devices.c.id == row.id)
            .values(
                kind=device.kind,
                capabilities=device.capabilities,
                labels=device.labels,
                state=state,
                removed=False,
            )
        )
    gone = [row.id for name, row in current.items() if name not in seen]
    if gone:
        conn.execute(
            update(devices)
            .where(devices.c.id.in_(gone))
            .values(state=DeviceState.OFFLINE, removed=True)
        )


def add_device(conn: Connection, agent_id: int, agent_name: str, device: DeviceRow) -> None:
    """One device appeared on an online agent."""
    existing = conn.execute(
        select(devices.c.id).where(devices.c.agent_id == agent_id, devices.c.name == device.name)
    )
    if existing.first() is None:
        conn.execute(
            insert(devices).values(
                id=device_id(agent_name, device.name),
                agent_id=agent_id,
                name=device.name,
                kind=device.kind,
                capabilities=device.capabilities,
                labels=device.labels,
                state=DeviceState.FREE,
                removed=False,
            )
        )
    else:
        conn.execute(
            update(devices)
            .where(
                devices.c.agent_id == agent_id,
                devices.c.name == device.name,
            )
            .values(
                kind=device.kind,
                capabilities=device.capabilities,
                labels=device.labels,
                removed=False,
                state=case(
                    (devices.c.holder_job_id.is_(None), DeviceState.FREE), else_=DeviceState.BUSY
                ),
            )
        )


def remove_device(conn: Connection, agent_id: int, name: str) -> None:
    """A device went away: it is offline and removed until the agent offers it again."""
    conn.execute(
        update(devices)
        .where(devices.c.agent_id == agent_id, devices.c.name == name)
        .values(state=DeviceState.OFFLINE, removed=True)
    )


def set_agent_offline(conn: Connection, agent_id: int) -> None:
    """The agent is gone: it and all its devices are offline (claims stay until released)."""
    conn.execute(
        update(agents).where(agents.c.id == agent_id).values(state=AgentState.OFFLINE, hub=None)
    )
    conn.execute(
        update(devices).where(devices.c.agent_id == agent_id).values(state=DeviceState.OFFLINE)
    )


def touch_agents(conn: Connection, agent_ids: Sequence[int], seen_at: datetime) -> None:
    """Record that the agents were heard from at `seen_at`.

    An agent whose row another transaction holds right now is skipped (SKIP LOCKED): that is
    nearly always the storing of its own events, which records `seen_at` too. Waiting made
    this update, which touches every agent of the hub, a party to deadlocks.
    """
    if agent_ids:
        free = (
            select(agents.c.id)
            .where(agents.c.id.in_(list(agent_ids)))
            .with_for_update(skip_locked=True, key_share=True)
        )
        conn.execute(
            update(agents).where(agents.c.id.in_(free.scalar_subquery())).values(last_seen=seen_at)
        )


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


def stale_agents(conn: Connection, seen_before: datetime) -> Sequence[Row[Any]]:
    """Online agents not heard from since `seen_before` (on any hub)."""
    query = select(agents).where(
        agents.c.state == AgentState.ONLINE, agents.c.last_seen < seen_before
    )
    return (conn.execute(query)).all()


def list_agents(conn: Connection) -> Sequence[Row[Any]]:
    """Every agent by name."""
    return (conn.execute(select(agents).order_by(agents.c.name))).all()


def get_agent(conn: Connection, agent_id: int, *, lock: bool = False) -> Row[Any] | None:
    """One agent by id; `lock` keeps other writers off its row until the transaction ends."""
    query = select(agents).where(agents.c.id == agent_id)
    if lock:
        query = query.with_for_update(key_share=True)
    return (conn.execute(query)).first()


def list_devices(conn: Connection, *, include_removed: bool = False) -> Sequence[Row[Any]]:
    """Every device with its agent's name, by id."""
    query = (
        select(devices, agents.c.name.label("agent_name"), agents.c.labels.label("agent_labels"))
        .join(agents, agents.c.id == devices.c.agent_id)
        .order_by(devices.c.id)
    )
    if not include_removed:
        query = query.where(devices.c.removed.is_(False))
    return (conn.execute(query)).all()


def free_devices(conn: Connection) -> Sequence[Row[Any]]:
    """Devices that can be claimed now, with their agent's name and labels."""
    query = (
        select(devices, agents.c.name.label("agent_name"), agents.c.labels.label("agent_labels"))
        .join(agents, agents.c.id == devices.c.agent_id)
        .where(devices.c.state == DeviceState.FREE, devices.c.removed.is_(False))
        .order_by(devices.c.id)
    )
    return (conn.execute(query)).all()


def _ids_match(ids: Sequence[str]) -> tuple[str, Any, Any]:
    """The WHERE on device ids and its parameter: `=` for one id (the usual case: no
    statement to expand per call), `IN` for several."""
    if len(ids) == 1:
        return "one", devices.c.id == bindparam("b_ids"), ids[0]
    return "many", devices.c.id.in_(bindparam("b_ids", expanding=True)), list(ids)


def claim_devices(conn: Connection, ids: Sequence[str], job_id: int, lease_until: datetime) -> bool:
    """Claim all of `ids` for a job, or none: True if every one was still free."""
    shape, match, value = _ids_match(ids)
    statement = prepared(
        ("claim_devices", shape),
        lambda: (
            update(devices)
            .where(match, devices.c.state == DeviceState.FREE)
            .values(
                state=DeviceState.BUSY,
                holder_job_id=bindparam("b_job"),
                lease_expires_at=bindparam("b_lease"),
            )
        ),
    )
    params = {"b_ids": value, "b_job": job_id, "b_lease": lease_until}
    if len(ids) == 1:
        return bool(conn.execute(statement, params).rowcount == 1)
    savepoint = conn.begin_nested()
    if conn.execute(statement, params).rowcount != len(ids):  # some were taken: take none
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


_RELEASED = {
    "holder_job_id": None,
    "lease_expires_at": None,
    "state": case((devices.c.state == DeviceState.BUSY, DeviceState.FREE), else_=devices.c.state),
}


def release_devices(conn: Connection, ids: Sequence[str], job_id: int) -> int:
    """Give back the devices `job_id` holds among `ids`; an offline device stays offline."""
    if not ids:
        return 0
    shape, match, value = _ids_match(ids)
    statement = prepared(
        ("release_devices", shape),
        lambda: (
            update(devices)
            .where(match, devices.c.holder_job_id == bindparam("b_job"))
            .values(_RELEASED)
        ),
    )
    return int(conn.execute(statement, {"b_ids": value, "b_job": job_id}).rowcount)


def renew_leases(conn: Connection, job_ids: Sequence[int], lease_until: datetime) -> None:
    """Extend the leases the given jobs hold; a device row another transaction holds right
    now is skipped until the next renewal (see `jobs.renew_job_leases`)."""
    if job_ids:
        held = (
            select(devices.c.id)
            .where(devices.c.holder_job_id.in_(job_ids))
            .with_for_update(skip_locked=True, key_share=True)
        )
        conn.execute(
            update(devices)
            .where(devices.c.id.in_(held.scalar_subquery()))
            .values(lease_expires_at=lease_until)
        )


def expire_leases(conn: Connection, now: datetime) -> Sequence[Any]:
    """Free the devices whose claim ran out (their holder died); returns the freed ones."""
    expired: Sequence[Any] = (
        conn.execute(
            select(devices.c.id, devices.c.holder_job_id).where(
                and_(devices.c.holder_job_id.is_not(None), devices.c.lease_expires_at < now)
            )
        )
    ).all()
    for row in expired:
        release_devices(conn, [row.id], row.holder_job_id)
    return expired


def release_job_devices(conn: Connection, job_id: int) -> int:
    """Give back every device a job still holds; an offline device stays offline."""
    statement = prepared(
        "release_job_devices",
        lambda: (
            update(devices).where(devices.c.holder_job_id == bindparam("job_id")).values(_RELEASED)
        ),
    )
    return int(conn.execute(statement, {"job_id": job_id}).rowcount)


def release_idle_job_devices(conn: Connection, job_id: int) -> int:
    """Give back the devices a job holds that none of its unfinished tasks use (a runner
    that died between claiming devices and creating tasks leaves such claims behind)."""
    busy = select(tasks.c.device_id).where(
        tasks.c.job_id == job_id, tasks.c.state.in_(["pending", "running"])
    )
    result = conn.execute(
        update(devices)
        .where(devices.c.holder_job_id == job_id, devices.c.id.not_in(busy))
        .values(_RELEASED)
    )
    return int(result.rowcount)
