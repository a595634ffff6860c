"""Gateway sessions: the session -> device -> node map every hub routes from, and their life.

A session row is written when a client asks (`queued`), takes a device in the same
transaction that claims it (`creating`), gets the driver's session id once the node answers
(`active`), and ends (`ended`, `failed`) with its device given back in the same transaction.
A session whose node is lost is `lost`: it keeps its device until the node is back and the
driver session is gone, so a device is never handed out while a driver may still use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, exists, insert, select, update

from testfleet.protocol.states import AgentState
from testfleet.store import devices as device_store
from testfleet.store.prepared import prepared
from testfleet.store.records import DriverSessionRecord, SessionCommandRecord
from testfleet.store.tables import (
    agents,
    devices,
    driver_sessions,
    session_commands,
    session_screenshots,
)

QUEUED = "queued"
CREATING = "creating"
ACTIVE = "active"
ENDING = "ending"
LOST = "lost"
ENDED = "ended"
FAILED = "failed"
LIVE_STATES = (QUEUED, CREATING, ACTIVE, ENDING, LOST)
"""States of sessions that are not over (they hold, or wait for, a device)."""


def open_request(
    conn: Connection,
    *,
    requestor: str,
    requested: dict[str, Any],
    priority: int,
    idle_timeout: int,
    hub: str,
    now: datetime,
) -> int:
    """Record a client's new-session request (queued); returns the session's row id."""
    result = conn.execute(
        insert(driver_sessions).values(
            state=QUEUED,
            requestor=requestor,
            requested=requested,
            priority=priority,
            browser=False,
            hub=hub,
            created_at=now,
            idle_timeout=idle_timeout,
            commands=0,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def claim_device(conn: Connection, row_id: int, device_id: str, now: datetime) -> bool:
    """Claim `device_id` for the queued session `row_id` (an atomic conditional update);
    False if the device is taken or the request was given up."""
    if not device_store.claim_devices(conn, [device_id], None, None, session_id=row_id):
        return False
    device = conn.execute(
        select(devices.c.agent_id, devices.c.url, devices.c.kind, devices.c.capabilities).where(
            devices.c.id == device_id
        )
    ).one()
    moved = conn.execute(
        update(driver_sessions)
        .where(driver_sessions.c.id == row_id, driver_sessions.c.state == QUEUED)
        .values(
            state=CREATING,
            device_id=device_id,
            agent_id=device.agent_id,
            node_url=device.url,
            browser=bool((device.capabilities or {}).get("browserName")),
        )
    ).rowcount
    if moved != 1:  # given up meanwhile: take nothing
        device_store.release_session_device(conn, row_id)
        return False
    conn.execute(update(devices).where(devices.c.id == device_id).values(last_used_at=now))
    return True


def activate(
    conn: Connection,
    row_id: int,
    session_id: str,
    capabilities: dict[str, Any],
    now: datetime,
) -> bool:
    """The node created the driver session: the session is live. False if it was ended
    meanwhile (killed while being created)."""
    if conn.execute(
        select(driver_sessions.c.id).where(driver_sessions.c.session_id == session_id)
    ).first():
        return False
    timeout = conn.execute(
        select(driver_sessions.c.idle_timeout).where(driver_sessions.c.id == row_id)
    ).scalar_one()
    moved = conn.execute(
        update(driver_sessions)
        .where(driver_sessions.c.id == row_id, driver_sessions.c.state == CREATING)
        .values(
            state=ACTIVE,
            session_id=session_id,
            capabilities=capabilities,
            started_at=now,
            last_command_at=now,
            idle_expires_at=now + timedelta(seconds=timeout),
        )
    ).rowcount
    return bool(moved == 1)


def finish(
    conn: Connection,
    row_id: int,
    reason: str,
    now: datetime,
    *,
    state: str = ENDED,
    only_from: Sequence[str] = LIVE_STATES,
) -> bool:
    """End a session (from one of `only_from`) and give back its device, in one transaction;
    False if it was not in one of those states."""
    moved = conn.execute(
        update(driver_sessions)
        .where(driver_sessions.c.id == row_id, driver_sessions.c.state.in_(list(only_from)))
        .values(state=state, ended_at=now, end_reason=reason, idle_expires_at=None)
    ).rowcount
    if moved != 1:
        return False
    device_store.release_session_device(conn, row_id)
    return True


def begin_ending(
    conn: Connection, row_id: int, *, only_from: Sequence[str] = (ACTIVE,)
) -> DriverSessionRecord | None:
    """Take a session into `ending` (its driver session is being deleted): one taker wins."""
    moved = conn.execute(
        update(driver_sessions)
        .where(driver_sessions.c.id == row_id, driver_sessions.c.state.in_(list(only_from)))
        .values(state=ENDING)
    ).rowcount
    return get(conn, row_id) if moved == 1 else None


def mark_lost(conn: Connection, row_id: int, reason: str) -> None:
    """The session's node cannot be reached: it holds its device until the node is back."""
    conn.execute(
        update(driver_sessions)
        .where(driver_sessions.c.id == row_id, driver_sessions.c.state.in_(LIVE_STATES))
        .values(state=LOST, end_reason=reason, idle_expires_at=None)
    )


def lose_sessions_of_offline_agents(conn: Connection) -> list[int]:
    """Sessions on agents that are offline become `lost`; returns their row ids."""
    offline = exists().where(
        agents.c.id == driver_sessions.c.agent_id, agents.c.state == AgentState.OFFLINE
    )
    rows = conn.execute(
        update(driver_sessions)
        .where(driver_sessions.c.state.in_([CREATING, ACTIVE, ENDING]), offline)
        .values(state=LOST, end_reason="its agent was lost", idle_expires_at=None)
        .returning(driver_sessions.c.id)
    )
    return sorted(int(row_id) for row_id in rows.scalars())


def lost_sessions_back_online(conn: Connection) -> list[DriverSessionRecord]:
    """Lost sessions whose agent is online again: their driver sessions can be cleaned up."""
    online = exists().where(
        agents.c.id == driver_sessions.c.agent_id, agents.c.state == AgentState.ONLINE
    )
    query = select(driver_sessions).where(driver_sessions.c.state == LOST, online)
    return [DriverSessionRecord.from_row(row) for row in conn.execute(query)]


def take_idle(conn: Connection, now: datetime, limit: int = 100) -> list[DriverSessionRecord]:
    """Live sessions idle past their timeout, taken into `ending` (one hub takes each)."""
    ids = conn.execute(
        select(driver_sessions.c.id)
        .where(driver_sessions.c.state == ACTIVE, driver_sessions.c.idle_expires_at < now)
        .order_by(driver_sessions.c.idle_expires_at)
        .limit(limit)
    ).scalars()
    taken = [begin_ending(conn, int(row_id)) for row_id in ids]
    return [record for record in taken if record is not None]


def take_stale_requests(conn: Connection, before: datetime) -> list[int]:
    """Requests queued or being created since before `before` whose hub died: failed, and
    any device they took given back."""
    ids = list(
        conn.execute(
            select(driver_sessions.c.id).where(
                driver_sessions.c.state.in_([QUEUED, CREATING]),
                driver_sessions.c.created_at < before,
            )
        ).scalars()
    )
    reason = "abandoned: the hub serving the request went away"
    return [int(i) for i in ids if finish(conn, int(i), reason, before, state=FAILED)]


@dataclass(frozen=True)
class Activity:
    """Commands one hub forwarded for one session since its last flush."""

    row_id: int
    last_at: datetime
    count: int
    idle_timeout: int


def record_activity(
    conn: Connection, activity: Sequence[Activity], commands: Sequence[dict[str, Any]]
) -> None:
    """Store forwarded commands and move their sessions' idle deadlines (live ones only)."""
    if commands:
        conn.execute(insert(session_commands), list(commands))
    if activity:
        statement = prepared(
            "session_activity",
            lambda: (
                update(driver_sessions)
                .where(
                    driver_sessions.c.id == bindparam("b_id"),
                    driver_sessions.c.state == ACTIVE,
                )
                .values(
                    last_command_at=bindparam("b_at"),
                    idle_expires_at=bindparam("b_expires"),
                    commands=driver_sessions.c.commands + bindparam("b_count"),
                )
            ),
        )
        conn.execute(
            statement,
            [
                {
                    "b_id": a.row_id,
                    "b_at": a.last_at,
                    "b_expires": a.last_at + timedelta(seconds=a.idle_timeout),
                    "b_count": a.count,
                }
                for a in activity
            ],
        )


def _with_agent() -> Any:
    shot = exists().where(session_screenshots.c.session_id == driver_sessions.c.id)
    return select(
        driver_sessions,
        agents.c.name.label("agent_name"),
        shot.label("has_screenshot"),
    ).outerjoin(agents, agents.c.id == driver_sessions.c.agent_id)


def get(conn: Connection, row_id: int) -> DriverSessionRecord | None:
    """One session by row id."""
    row = conn.execute(_with_agent().where(driver_sessions.c.id == row_id)).first()
    return DriverSessionRecord.from_row(row) if row is not None else None


def by_session_id(conn: Connection, session_id: str) -> DriverSessionRecord | None:
    """One session by the id its client uses (the driver's)."""
    statement = prepared(
        "session_by_id",
        lambda: _with_agent().where(driver_sessions.c.session_id == bindparam("sid")),
    )
    row = conn.execute(statement, {"sid": session_id}).first()
    return DriverSessionRecord.from_row(row) if row is not None else None


def list_sessions(
    conn: Connection,
    *,
    states: Sequence[str] = (),
    device_id: str | None = None,
    agent: str | None = None,
    requestor: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[DriverSessionRecord]:
    """Sessions, newest first, filtered; `before` a row id for the next page."""
    query = _with_agent().order_by(driver_sessions.c.id.desc()).limit(limit)
    if states:
        query = query.where(driver_sessions.c.state.in_(list(states)))
    if device_id is not None:
        query = query.where(driver_sessions.c.device_id == device_id)
    if agent is not None:
        query = query.where(agents.c.name == agent)
    if requestor is not None:
        query = query.where(driver_sessions.c.requestor == requestor)
    if before is not None:
        query = query.where(driver_sessions.c.id < before)
    return [DriverSessionRecord.from_row(row) for row in conn.execute(query)]


def commands_of(
    conn: Connection, row_id: int, *, after: int = 0, limit: int = 1000
) -> list[SessionCommandRecord]:
    """A session's commands in order, from id `after` on."""
    query = (
        select(session_commands)
        .where(session_commands.c.session_id == row_id, session_commands.c.id > after)
        .order_by(session_commands.c.id)
        .limit(limit)
    )
    return [SessionCommandRecord.from_row(row) for row in conn.execute(query)]


def prune_history(conn: Connection, ended_before: datetime, limit: int = 1000) -> int:
    """Forget sessions that ended before `ended_before`, with their commands and screenshot
    (at most `limit` sessions a call); returns how many."""
    ids = list(
        conn.execute(
            select(driver_sessions.c.id)
            .where(
                driver_sessions.c.state.in_([ENDED, FAILED]),
                driver_sessions.c.ended_at < ended_before,
            )
            .limit(limit)
        ).scalars()
    )
    if ids:
        conn.execute(session_commands.delete().where(session_commands.c.session_id.in_(ids)))
        conn.execute(session_screenshots.delete().where(session_screenshots.c.session_id.in_(ids)))
        conn.execute(driver_sessions.delete().where(driver_sessions.c.id.in_(ids)))
    return len(ids)


def save_screenshot(conn: Connection, row_id: int, png: bytes, now: datetime) -> None:
    """Keep the session's final screenshot (one per session)."""
    conn.execute(session_screenshots.delete().where(session_screenshots.c.session_id == row_id))
    conn.execute(insert(session_screenshots).values(session_id=row_id, taken_at=now, png=png))


def screenshot(conn: Connection, row_id: int) -> bytes | None:
    """The session's final screenshot (PNG), if one was taken."""
    value = conn.execute(
        select(session_screenshots.c.png).where(session_screenshots.c.session_id == row_id)
    ).scalar()
    return bytes(value) if value is not None else None
