"""Webhooks and their deliveries: registered, listed, and every attempt recorded.

Fan-out (events to deliveries) and claims are in `webhook_queue.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update

from testfleet.store.result_records import AttemptRecord, DeliveryRecord, WebhookRecord
from testfleet.store.tables import webhook_attempts, webhook_deliveries, webhooks

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


def create_webhook(
    conn: Connection,
    *,
    url: str,
    secret: str,
    events: Sequence[str],
    tags: Sequence[str],
    description: str,
    active: bool,
    created_by: str,
    now: datetime,
) -> WebhookRecord:
    """Register a webhook."""
    row = conn.execute(
        insert(webhooks)
        .values(
            url=url,
            secret=secret,
            events=list(events),
            tags=list(tags),
            description=description,
            active=active,
            created_at=now,
            created_by=created_by,
        )
        .returning(*webhooks.c)
    ).one()
    return WebhookRecord.from_row(row)


def list_webhooks(conn: Connection, *, active_only: bool = False) -> list[WebhookRecord]:
    """Every webhook, oldest first."""
    query = select(webhooks).order_by(webhooks.c.id)
    if active_only:
        query = query.where(webhooks.c.active.is_(True))
    return [WebhookRecord.from_row(row) for row in conn.execute(query)]


def get_webhook(conn: Connection, webhook_id: int) -> WebhookRecord | None:
    """One webhook."""
    row = conn.execute(select(webhooks).where(webhooks.c.id == webhook_id)).first()
    return WebhookRecord.from_row(row) if row is not None else None


def update_webhook(conn: Connection, /, webhook_id: int, **values: Any) -> WebhookRecord | None:
    """Change a webhook; None if there is none."""
    if values:
        conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(**values))
    return get_webhook(conn, webhook_id)


def delete_webhook(conn: Connection, webhook_id: int) -> bool:
    """Remove a webhook with its deliveries; False if there was none."""
    return bool(conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id)).rowcount)


def add_delivery(
    conn: Connection,
    webhook_id: int,
    event: str,
    payload: dict[str, Any],
    now: datetime,
    event_id: int | None = None,
) -> int:
    """Queue one delivery, due now; returns its id."""
    row = conn.execute(
        insert(webhook_deliveries)
        .values(
            webhook_id=webhook_id,
            event=event,
            event_id=event_id,
            payload=payload,
            state=PENDING,
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
        .returning(webhook_deliveries.c.id)
    ).one()
    return int(row.id)


def redeliver(conn: Connection, delivery_id: int, now: datetime) -> DeliveryRecord | None:
    """Queue a delivery again, due now (a failed one gets a new day of retries); one being
    attempted right now is left alone (its state says so)."""
    idle = or_(webhook_deliveries.c.claim_until.is_(None), webhook_deliveries.c.claim_until < now)
    conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id == delivery_id, idle)
        .values(
            state=PENDING,
            next_attempt_at=now,
            ended_at=None,
            created_at=now,
            claimed_by=None,
            claim_until=None,
        )
    )
    row = conn.execute(
        select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
    ).first()
    return DeliveryRecord.from_row(row) if row is not None else None


def list_deliveries(
    conn: Connection, webhook_id: int, *, limit: int = 50, before: int | None = None
) -> list[tuple[DeliveryRecord, list[AttemptRecord]]]:
    """A webhook's deliveries, newest first, each with its attempts in order."""
    query = (
        select(webhook_deliveries)
        .where(webhook_deliveries.c.webhook_id == webhook_id)
        .order_by(webhook_deliveries.c.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(webhook_deliveries.c.id < before)
    deliveries = [DeliveryRecord.from_row(row) for row in conn.execute(query)]
    attempts: dict[int, list[AttemptRecord]] = {d.id: [] for d in deliveries}
    if deliveries:
        rows = conn.execute(
            select(webhook_attempts)
            .where(webhook_attempts.c.delivery_id.in_(list(attempts)))
            .order_by(webhook_attempts.c.delivery_id, webhook_attempts.c.number)
        )
        for row in rows:
            attempts[row.delivery_id].append(AttemptRecord.from_row(row))
    return [(delivery, attempts[delivery.id]) for delivery in deliveries]
