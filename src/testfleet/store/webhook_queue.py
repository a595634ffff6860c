"""The webhook queue: stored events fanned out to deliveries, deliveries claimed by one hub
at a time, attempts recorded.

Fan-out reads the event log after a cursor (`event_cursors`, row "webhooks") that it locks,
so with several hubs each event becomes one delivery per webhook (and `(webhook, event)` is
unique besides). Claims are conditional updates of due rows (`SKIP LOCKED` on PostgreSQL)
with a lease: a hub that dies mid-attempt leaves its claim to run out, then another retries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from testfleet.store.result_records import DeliveryRecord
from testfleet.store.tables import (
    event_cursors,
    events,
    webhook_attempts,
    webhook_deliveries,
    webhooks,
)
from testfleet.store.webhook_payloads import payloads
from testfleet.store.webhooks import DELIVERED, FAILED, PENDING, list_webhooks

CURSOR = "webhooks"
CLAIM_ROUNDS = 4
FANOUT_KINDS = ("job_finished", "agent_lost", "device_removed")


def fan_out(conn: Connection, now: datetime, limit: int = 500) -> int:
    """Queue a delivery per matching webhook for events stored since the last fan-out;
    returns how many were queued."""
    postgres = conn.dialect.name == "postgresql"
    cursor_query = select(event_cursors.c.last_event_id).where(event_cursors.c.name == CURSOR)
    if postgres:
        cursor_query = cursor_query.with_for_update()
    last = conn.execute(cursor_query).scalar()
    newest = conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one()
    if last is None:  # the first fan-out: deliveries start from now, not from history
        dialect = postgresql if postgres else sqlite
        conn.execute(
            dialect.insert(event_cursors)
            .values(name=CURSOR, last_event_id=newest)
            .on_conflict_do_nothing()
        )
        return 0
    if newest <= last:
        return 0
    hooks = list_webhooks(conn, active_only=True)
    upto = newest
    queued = 0
    if hooks:
        rows = conn.execute(
            select(events)
            .where(events.c.id > last, events.c.id <= newest, events.c.kind.in_(FANOUT_KINDS))
            .order_by(events.c.id)
            .limit(limit)
        ).all()
        if len(rows) == limit:
            upto = rows[-1].id
        values = []
        for event_id, event, payload, tags in payloads(conn, rows):
            for hook in hooks:
                if event in hook.events and (not hook.tags or set(hook.tags) & set(tags)):
                    values.append(_delivery(hook.id, event, event_id, payload, now))
        if values:
            dialect = postgresql if postgres else sqlite
            conn.execute(dialect.insert(webhook_deliveries).on_conflict_do_nothing(), values)
            queued = len(values)
    conn.execute(
        update(event_cursors).where(event_cursors.c.name == CURSOR).values(last_event_id=upto)
    )
    return queued


def _delivery(
    webhook_id: int, event: str, event_id: int, payload: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "webhook_id": webhook_id,
        "event": event,
        "event_id": event_id,
        "payload": payload,
        "state": PENDING,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
        "ended_at": None,
        "claimed_by": None,
        "claim_until": None,
    }


@dataclass(frozen=True)
class Claimed:
    """A delivery this hub will attempt now, with where and how to sign it."""

    delivery: DeliveryRecord
    url: str
    secret: str


def claim_due(
    conn: Connection,
    hub: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    in_flight: Mapping[int, int] | None = None,
    per_webhook: int = 4,
) -> list[Claimed]:
    """Take up to `limit` due deliveries nobody holds, at most `per_webhook` in flight per
    webhook (counting `in_flight`, this hub's attempts under way): a webhook with a backlog
    never starves the others."""
    if limit <= 0:
        return []
    counts = dict(in_flight or {})
    free = or_(webhook_deliveries.c.claim_until.is_(None), webhook_deliveries.c.claim_until < now)
    ids: list[int] = []
    for _ in range(CLAIM_ROUNDS):
        busy = [hook for hook, count in counts.items() if count >= per_webhook]
        due = (
            select(webhook_deliveries.c.id, webhook_deliveries.c.webhook_id)
            .where(
                webhook_deliveries.c.state == PENDING,
                webhook_deliveries.c.next_attempt_at <= now,
                free,
            )
            .order_by(webhook_deliveries.c.next_attempt_at, webhook_deliveries.c.id)
            .limit(limit - len(ids))
        )
        if busy:
            due = due.where(webhook_deliveries.c.webhook_id.not_in(busy))
        if ids:
            due = due.where(webhook_deliveries.c.id.not_in(ids))
        if conn.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        rows = conn.execute(due).all()
        for row in rows:
            if counts.get(row.webhook_id, 0) < per_webhook:
                counts[row.webhook_id] = counts.get(row.webhook_id, 0) + 1
                ids.append(int(row.id))
        if not rows or len(ids) >= limit:
            break
    if not ids:
        return []
    conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id.in_(ids), webhook_deliveries.c.state == PENDING, free)
        .values(claimed_by=hub, claim_until=lease_until)
    )
    mine = conn.execute(
        select(webhook_deliveries, webhooks.c.url, webhooks.c.secret)
        .join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
        .where(webhook_deliveries.c.id.in_(ids), webhook_deliveries.c.claimed_by == hub)
    )
    claimed = []
    for row in mine:
        values = dict(row._mapping)
        url, secret = values.pop("url"), values.pop("secret")
        claimed.append(Claimed(DeliveryRecord(**values), url, secret))
    return sorted(claimed, key=lambda c: c.delivery.id)


@dataclass(frozen=True)
class AttemptResult:
    """How one attempt went, and what comes next (`retry_at` None: no retry)."""

    at: datetime
    duration_ms: float
    status_code: int | None
    error: str | None
    delivered: bool
    retry_at: datetime | None


def record_attempt(conn: Connection, delivery_id: int, hub: str, result: AttemptResult) -> None:
    """Record an attempt and move the delivery on: delivered, due again, or failed."""
    row = conn.execute(
        select(webhook_deliveries.c.attempts).where(webhook_deliveries.c.id == delivery_id)
    ).first()
    if row is None:
        return  # its webhook was deleted meanwhile
    number = int(row.attempts) + 1
    conn.execute(
        insert(webhook_attempts).values(
            delivery_id=delivery_id,
            number=number,
            at=result.at,
            hub=hub,
            duration_ms=result.duration_ms,
            status_code=result.status_code,
            error=result.error,
        )
    )
    if result.delivered:
        state, ended, next_at = DELIVERED, result.at, None
    elif result.retry_at is None:
        state, ended, next_at = FAILED, result.at, None
    else:
        state, ended, next_at = PENDING, None, result.retry_at
    conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id == delivery_id)
        .values(
            attempts=number,
            state=state,
            ended_at=ended,
            next_attempt_at=next_at,
            claimed_by=None,
            claim_until=None,
        )
    )


def release_claims(conn: Connection, hub: str) -> None:
    """Give back this hub's claims (it is stopping): others may attempt them at once."""
    conn.execute(
        update(webhook_deliveries)
        .where(and_(webhook_deliveries.c.claimed_by == hub, webhook_deliveries.c.state == PENDING))
        .values(claimed_by=None, claim_until=None)
    )
