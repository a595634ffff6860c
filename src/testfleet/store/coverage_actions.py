"""Admin actions handed to the hub whose probes they concern (several hubs on PostgreSQL):
the asking hub stores one and notifies that hub, which carries it out and writes the result
(the sessions it concerned, or the error), which the asking hub reads back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from testfleet.store.tables import coverage_actions


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One handed-over action."""

    id: int
    hub: str
    target: dict[str, Any]
    action: dict[str, Any]
    requested_by: str
    state: str
    result: dict[str, Any] | None
    created_at: datetime


def add_action(
    conn: Connection,
    *,
    hub: str,
    target: dict[str, Any],
    action: dict[str, Any],
    requested_by: str,
    now: datetime,
) -> int:
    """Store an action for `hub` to carry out; returns its id."""
    inserted = conn.execute(
        insert(coverage_actions).values(
            hub=hub,
            target=target,
            action=action,
            requested_by=requested_by,
            state="pending",
            created_at=now,
        )
    ).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def get_action(conn: Connection, action_id: int) -> ActionRecord | None:
    """An action by id."""
    row = conn.execute(select(coverage_actions).where(coverage_actions.c.id == action_id)).first()
    return ActionRecord(**row._mapping) if row is not None else None


def claim_action(conn: Connection, action_id: int, hub: str) -> ActionRecord | None:
    """Take a pending action handed to `hub` to carry it out (once: None if it is not
    pending any more, or not for `hub`)."""
    taken = conn.execute(
        update(coverage_actions)
        .where(
            coverage_actions.c.id == action_id,
            coverage_actions.c.hub == hub,
            coverage_actions.c.state == "pending",
        )
        .values(state="running")
    ).rowcount
    return get_action(conn, action_id) if taken else None


def end_action(conn: Connection, action_id: int, state: str, result: dict[str, Any]) -> None:
    """Record how an action ended: `done` with the sessions, or `failed` with the error."""
    conn.execute(
        update(coverage_actions)
        .where(coverage_actions.c.id == action_id)
        .values(state=state, result=result)
    )


def pending_actions(conn: Connection, hub: str) -> list[int]:
    """Actions waiting for `hub` (after its listener reconnects)."""
    rows = conn.execute(
        select(coverage_actions.c.id)
        .where(coverage_actions.c.hub == hub, coverage_actions.c.state == "pending")
        .order_by(coverage_actions.c.id)
    )
    return [int(r.id) for r in rows]
