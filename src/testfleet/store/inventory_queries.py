"""Listing agents and devices a page at a time, filtered in the database (a fleet of tens of
thousands is never read whole to answer one request)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, func, select

from testfleet.store.records import AgentRecord, DeviceRecord
from testfleet.store.tables import agents, devices, hubs


class InventoryCursorError(ValueError):
    """A `cursor` that no page of ours handed out."""


def encode_cursor(kind: str, last: str) -> str:
    """An opaque cursor for the page after `last`."""
    return base64.urlsafe_b64encode(f"{kind}:{last}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> str:
    """What a cursor of ours points after; InventoryCursorError otherwise."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        text = ""
    prefix = f"{kind}:"
    if not text.startswith(prefix) or "\x00" in text:
        raise InventoryCursorError(f"cursor {cursor!r} was not handed out by this API")
    return text[len(prefix) :]


@dataclass(frozen=True)
class DeviceQuery:
    """Filters for listing devices; every given one must match."""

    states: Sequence[str] = ()
    agent: str | None = None
    kind: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    capabilities: dict[str, str] = field(default_factory=dict)
    limit: int = 1000
    cursor: str | None = None


def list_devices_page(
    conn: Connection, query: DeviceQuery
) -> tuple[list[DeviceRecord], str | None]:
    """A page of devices by id, and the cursor of the next page (None on the last)."""
    statement = (
        select(devices, agents.c.name.label("agent_name"), agents.c.labels.label("agent_labels"))
        .join(agents, agents.c.id == devices.c.agent_id)
        .where(devices.c.removed.is_(False))
        .order_by(devices.c.id)
        .limit(query.limit + 1)
    )
    if query.cursor:
        statement = statement.where(devices.c.id > decode_cursor("d", query.cursor))
    if query.states:
        statement = statement.where(devices.c.state.in_(list(query.states)))
    if query.agent:
        statement = statement.where(agents.c.name == query.agent)
    if query.kind:
        statement = statement.where(devices.c.kind == query.kind)
    # As the allocator matches (hub/matching.py): case-insensitive, a device's own label first
    # and its agent's otherwise.
    for key, value in query.labels.items():
        label = func.coalesce(devices.c.labels[key].as_string(), agents.c.labels[key].as_string())
        statement = statement.where(func.lower(label) == value.lower())
    for key, value in query.capabilities.items():
        offered = devices.c.capabilities[key].as_string()
        statement = statement.where(func.lower(offered) == value.lower())
    records = [DeviceRecord.from_row(row) for row in conn.execute(statement)]
    if len(records) > query.limit:
        return records[: query.limit], encode_cursor("d", records[query.limit - 1].id)
    return records, None


@dataclass(frozen=True)
class AgentQuery:
    """Filters for listing agents; every given one must match."""

    states: Sequence[str] = ()
    hub: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    limit: int = 1000
    cursor: str | None = None


@dataclass(frozen=True)
class AgentPage:
    """A page of agents: each with its device count and when it was last known alive (its
    own last event, or its hub's heartbeat while it is online there)."""

    agents: list[AgentRecord]
    device_counts: dict[int, int]
    heard: dict[int, datetime | None]
    next_cursor: str | None


def list_agents_page(conn: Connection, query: AgentQuery) -> AgentPage:
    """A page of agents by name."""
    statement = select(agents).order_by(agents.c.name).limit(query.limit + 1)
    if query.cursor:
        statement = statement.where(agents.c.name > decode_cursor("a", query.cursor))
    if query.states:
        statement = statement.where(agents.c.state.in_(list(query.states)))
    if query.hub:
        statement = statement.where(agents.c.hub == query.hub)
    for key, value in query.labels.items():
        statement = statement.where(agents.c.labels[key].as_string() == value)
    records = [AgentRecord.from_row(row) for row in conn.execute(statement)]
    cursor = None
    if len(records) > query.limit:
        records = records[: query.limit]
        cursor = encode_cursor("a", records[-1].name)
    ids = [record.id for record in records]
    counts: dict[int, int] = {}
    beats: dict[str, datetime] = {}
    if ids:
        counted = (
            select(devices.c.agent_id, func.count())
            .where(devices.c.agent_id.in_(ids), devices.c.removed.is_(False))
            .group_by(devices.c.agent_id)
        )
        counts = {int(agent_id): int(count) for agent_id, count in conn.execute(counted)}
        names = sorted({r.hub for r in records if r.hub is not None})
        if names:
            beat = select(hubs.c.server_id, hubs.c.heartbeat_at).where(hubs.c.server_id.in_(names))
            beats = {row.server_id: row.heartbeat_at for row in conn.execute(beat)}
    heard = {r.id: _heard(r, beats) for r in records}
    return AgentPage(records, counts, heard, cursor)


def _heard(agent: AgentRecord, beats: dict[str, datetime]) -> datetime | None:
    """When an agent was last known alive: its hub vouches for it while it is online there."""
    beat = beats.get(agent.hub) if agent.state == "online" and agent.hub else None
    if beat is None or (agent.last_seen is not None and agent.last_seen > beat):
        return agent.last_seen
    return beat
