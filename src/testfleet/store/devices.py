"""Devices of agents, and the claims (leases) jobs hold on them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, select, update
from sqlalchemy.dialects import postgresql, sqlite

from testfleet.protocol.states import DeviceState, RunState
from testfleet.store.prepared import prepared
from testfleet.store.records import DeviceRecord
from testfleet.store.tables import agents, devices, tasks
from testfleet.store.types import utc_now


@dataclass(frozen=True)
class DeviceOffer:
    """A device as its agent offers it."""

    name: str
    kind: str
    capabilities: dict[str, Any]
    labels: dict[str, str]
    url: str | None = None
    session_capabilities: dict[str, Any] | None = None


def device_id(agent_name: str, device_name: str) -> str:
    """Devices are named by their agent: `agent:device`."""
    return f"{agent_name}:{device_name}"


def _upsert(conn: Connection) -> Any:
    """INSERT a device, or refresh it if it exists; a refreshed device still claimed by a job
    stays busy, any other becomes free."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite

    def build() -> Any:
        statement = dialect.insert(devices).values(changed_at=utc_now())
        return statement.on_conflict_do_update(
            index_elements=[devices.c.id],
            set_={
                "kind": statement.excluded.kind,
                "capabilities": statement.excluded.capabilities,
                "labels": statement.excluded.labels,
                "url": statement.excluded.url,
                "session_capabilities": statement.excluded.session_capabilities,
                "removed": False,
                "state": case(
                    (
                        and_(
                            devices.c.holder_job_id.is_(None),
                            devices.c.holder_session_id.is_(None),
                        ),
                        DeviceState.FREE,
                    ),
                    else_=DeviceState.BUSY,
                ),
                "changed_at": utc_now(),
            },
        )

    return prepared(("upsert_device", dialect.__name__), build)


def _offer_values(agent_id: int, agent_name: str, device: DeviceOffer) -> dict[str, Any]:
    return {
        "id": device_id(agent_name, device.name),
        "agent_id": agent_id,
        "name": device.name,
        "kind": device.kind,
        "capabilities": device.capabilities,
        "labels": device.labels,
        "url": device.url,
        "session_capabilities": device.session_capabilities,
        "state": DeviceState.FREE,
        "removed": False,
    }


def add_devices(
    conn: Connection, agent_id: int, agent_name: str, offered: Iterable[DeviceOffer]
) -> None:
    """Devices appeared on an online agent (or came back): added, or refreshed."""
    rows = [_offer_values(agent_id, agent_name, device) for device in offered]
    if rows:
        conn.execute(_upsert(conn), rows)


def sync_devices(
    conn: Connection, agent_id: int, agent_name: str, offered: Sequence[DeviceOffer]
) -> None:
    """Make the agent's devices the `offered` ones: offered ones added or refreshed, the
    others offline and removed."""
    sync_devices_of(conn, {agent_id: (agent_name, offered)})


def sync_devices_of(
    conn: Connection, offers: Mapping[int, tuple[str, Sequence[DeviceOffer]]]
) -> None:
    """`sync_devices` for several agents (agent id -> name and offered devices; a few hundred
    agents at most), in three statements whatever their number."""
    rows = [
        _offer_values(agent_id, name, device)
        for agent_id, (name, offered) in offers.items()
        for device in offered
    ]
    if rows:
        conn.execute(_upsert(conn), rows)
    names = {agent_id: {d.name for d in offered} for agent_id, (_, offered) in offers.items()}
    current = conn.execute(
        select(devices.c.id, devices.c.agent_id, devices.c.name).where(
            devices.c.agent_id.in_(list(offers)), devices.c.removed.is_(False)
        )
    )
    gone = [row.id for row in current if row.name not in names[row.agent_id]]
    if gone:
        conn.execute(
            update(devices)
            .where(devices.c.id.in_(gone))
            .values(state=DeviceState.OFFLINE, removed=True, changed_at=utc_now())
        )


def remove_device(conn: Connection, agent_id: int, name: str) -> None:
    """A device went away: it is offline and removed until the agent offers it again."""
    conn.execute(
        update(devices)
        .where(devices.c.agent_id == agent_id, devices.c.name == name)
        .values(state=DeviceState.OFFLINE, removed=True, changed_at=utc_now())
    )


def set_devices_offline(conn: Connection, agent_id: int) -> None:
    """Every device of a lost agent is offline (claims stay until released)."""
    conn.execute(
        update(devices)
        .where(devices.c.agent_id == agent_id)
        .values(state=DeviceState.OFFLINE, changed_at=utc_now())
    )


def _with_agent() -> Any:
    return select(
        devices, agents.c.name.label("agent_name"), agents.c.labels.label("agent_labels")
    ).join(agents, agents.c.id == devices.c.agent_id)


def list_devices(conn: Connection, *, include_removed: bool = False) -> list[DeviceRecord]:
    """Every device with its agent's name, by id."""
    query = _with_agent().order_by(devices.c.id)
    if not include_removed:
        query = query.where(devices.c.removed.is_(False))
    return [DeviceRecord.from_row(row) for row in conn.execute(query)]


def get_device(conn: Connection, device_id: str) -> DeviceRecord | None:
    """One device by id, with its agent's name and labels."""
    row = conn.execute(_with_agent().where(devices.c.id == device_id)).first()
    return DeviceRecord.from_row(row) if row is not None else None


def free_devices(conn: Connection) -> list[DeviceRecord]:
    """Devices that can be claimed now, with their agent's name and labels."""
    query = (
        _with_agent()
        .where(devices.c.state == DeviceState.FREE, devices.c.removed.is_(False))
        .order_by(devices.c.id)
    )
    return [DeviceRecord.from_row(row) for row in conn.execute(query)]


def device_page(conn: Connection, after_id: str, limit: int) -> list[DeviceRecord]:
    """Devices (not removed) with ids above `after_id`, by id: the inventory a page at a
    time."""
    query = (
        _with_agent()
        .where(devices.c.removed.is_(False), devices.c.id > after_id)
        .order_by(devices.c.id)
        .limit(limit)
    )
    return [DeviceRecord.from_row(row) for row in conn.execute(query)]


def devices_of_agents(conn: Connection, agent_ids: Sequence[int]) -> list[DeviceRecord]:
    """The devices (removed ones too) of these agents (at most a few hundred at once)."""
    query = _with_agent().where(devices.c.agent_id.in_(list(agent_ids)))
    return [DeviceRecord.from_row(row) for row in conn.execute(query)]


ChangeMark = tuple[str, datetime]
"""A device's id and when it last changed."""


def change_marks(conn: Connection, since: datetime, after_id: str, limit: int) -> list[ChangeMark]:
    """Up to `limit` devices (removed ones too) changed at or after `since`, as (id, when),
    by id from just after `after_id` ("" for the first page).

    Paged by id alone, never by time: on SQLite the store's own timestamps have
    milliseconds and Python's have microseconds, so equal instants do not compare equal
    as text. A device that changes again after its page was read is found by the next
    look, which starts earlier than this one ended."""
    query = (
        select(devices.c.id, devices.c.changed_at)
        .where(devices.c.changed_at >= since, devices.c.id > after_id)
        .order_by(devices.c.id)
        .limit(limit)
    )
    return [(row.id, row.changed_at) for row in conn.execute(query)]


def devices_with_ids(conn: Connection, ids: Sequence[str]) -> list[DeviceRecord]:
    """These devices (removed ones too; at most a few hundred ids at once)."""
    query = _with_agent().where(devices.c.id.in_(list(ids)))
    return [DeviceRecord.from_row(row) for row in conn.execute(query)]


def _ids_match(ids: Sequence[str]) -> tuple[str, Any, Any]:
    """The WHERE on device ids and its parameter: `=` for one id (the usual case: no
    statement to expand per call), `IN` for several."""
    if len(ids) == 1:
        return "one", devices.c.id == bindparam("b_ids"), ids[0]
    return "many", devices.c.id.in_(bindparam("b_ids", expanding=True)), list(ids)


def claim_devices(
    conn: Connection,
    ids: Sequence[str],
    job_id: int | None,
    lease_until: datetime | None,
    *,
    session_id: int | None = None,
) -> bool:
    """Claim all of `ids` for a job (or for gateway session `session_id`, whose claim has no
    lease: the session's idle timeout ends it), or none: True if every one was still free."""
    shape, match, value = _ids_match(ids)
    statement = prepared(
        ("claim_devices", shape),
        lambda: (
            update(devices)
            .where(match, devices.c.state == DeviceState.FREE)
            .values(
                state=DeviceState.BUSY,
                holder_job_id=bindparam("b_job"),
                holder_session_id=bindparam("b_session"),
                lease_expires_at=bindparam("b_lease"),
                changed_at=utc_now(),
                claimed_at=bindparam("b_now"),
            )
        ),
    )
    params = {
        "b_ids": value,
        "b_job": job_id,
        "b_session": session_id,
        "b_lease": lease_until,
        "b_now": datetime.now(UTC),
    }
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
    "holder_session_id": None,
    "lease_expires_at": None,
    "claimed_at": None,
    "state": case((devices.c.state == DeviceState.BUSY, DeviceState.FREE), else_=devices.c.state),
    "changed_at": utc_now(),
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


def release_session_device(conn: Connection, session_id: int) -> int:
    """Give back the device gateway session `session_id` holds; an offline one stays offline."""
    statement = prepared(
        "release_session_device",
        lambda: (
            update(devices)
            .where(devices.c.holder_session_id == bindparam("session"))
            .values(_RELEASED)
        ),
    )
    return int(conn.execute(statement, {"session": session_id}).rowcount)


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


def expire_leases(conn: Connection, now: datetime) -> list[str]:
    """Free the devices whose claim ran out (their holder died), in one statement; returns
    their ids."""
    statement = (
        update(devices)
        .where(and_(devices.c.holder_job_id.is_not(None), devices.c.lease_expires_at < now))
        .values(_RELEASED)
        .returning(devices.c.id)
    )
    return sorted(str(device) for device in conn.execute(statement).scalars())


def release_job_devices(conn: Connection, job_id: int) -> int:
    """Give back every device a job still holds; an offline device stays offline."""
    statement = prepared(
        "release_job_devices",
        lambda: (
            update(devices).where(devices.c.holder_job_id == bindparam("job_id")).values(_RELEASED)
        ),
    )
    return int(conn.execute(statement, {"job_id": job_id}).rowcount)


def release_idle_job_devices(conn: Connection, job_id: int) -> list[str]:
    """Give back the devices a job holds that none of its unfinished tasks use (a runner
    that died between claiming devices and creating tasks leaves such claims behind);
    returns their ids."""
    busy = select(tasks.c.device_id).where(
        tasks.c.job_id == job_id, tasks.c.state.in_([RunState.PENDING, RunState.RUNNING])
    )
    result = conn.execute(
        update(devices)
        .where(devices.c.holder_job_id == job_id, devices.c.id.not_in(busy))
        .values(_RELEASED)
        .returning(devices.c.id)
    )
    return [str(device_id) for device_id in result.scalars()]
