"""Webhooks: registered by admins, their deliveries and attempts visible to readers."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Response

from testfleet.hub.errors import ApiError
from testfleet.hub.routes.deps import Admin, HubDep, Reader, RowId
from testfleet.hub.runtime import Hub
from testfleet.protocol.automation import (
    AttemptInfo,
    DeliveryInfo,
    DeliveryList,
    WebhookCreate,
    WebhookCreated,
    WebhookInfo,
    WebhookList,
    WebhookUpdate,
)
from testfleet.protocol.types import INT64_MAX
from testfleet.protocol.wire import utcnow
from testfleet.store import webhooks as webhook_store
from testfleet.store.result_records import AttemptRecord, DeliveryRecord, WebhookRecord

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


def webhook_info(record: WebhookRecord) -> WebhookInfo:
    """A webhook as listed: never its secret."""
    return WebhookInfo(
        webhook_id=record.id,
        url=record.url,
        events=record.events,
        tags=record.tags,
        description=record.description,
        active=record.active,
        created_at=record.created_at,
        created_by=record.created_by,
    )


def delivery_info(delivery: DeliveryRecord, attempts: list[AttemptRecord]) -> DeliveryInfo:
    """A delivery with its attempts."""
    return DeliveryInfo(
        delivery_id=delivery.id,
        webhook_id=delivery.webhook_id,
        event=delivery.event,
        state=delivery.state,
        attempts=delivery.attempts,
        created_at=delivery.created_at,
        next_attempt_at=delivery.next_attempt_at,
        ended_at=delivery.ended_at,
        payload=delivery.payload,
        attempt_log=[
            AttemptInfo(
                number=a.number,
                at=a.at,
                hub=a.hub,
                duration_ms=a.duration_ms,
                status_code=a.status_code,
                error=a.error,
            )
            for a in attempts
        ],
    )


@router.post("", status_code=201, response_model=WebhookCreated, summary="Register a webhook")
async def create(body: WebhookCreate, hub: HubDep, who: Admin) -> WebhookCreated:
    secret = body.secret or secrets.token_urlsafe(32)
    record = await hub.store.write(
        webhook_store.create_webhook,
        url=str(body.url),
        secret=secret,
        events=body.events,
        tags=body.tags,
        description=body.description,
        active=body.active,
        created_by=who.name,
        now=utcnow(),
    )
    hub.signals.lab_changed()
    return WebhookCreated(**webhook_info(record).model_dump(), secret=secret)


@router.get("", response_model=WebhookList, summary="Every webhook (without secrets)")
async def list_all(hub: HubDep, _: Reader) -> WebhookList:
    records = await hub.store.read(webhook_store.list_webhooks)
    return WebhookList(server_id=hub.server_id, webhooks=[webhook_info(r) for r in records])


@router.get("/{webhook_id}", response_model=WebhookInfo, summary="One webhook")
async def get(webhook_id: RowId, hub: HubDep, _: Reader) -> WebhookInfo:
    return webhook_info(await _webhook(hub, webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookInfo, summary="Pause, resume or edit")
async def patch(webhook_id: RowId, body: WebhookUpdate, hub: HubDep, _: Admin) -> WebhookInfo:
    values = body.model_dump(exclude_none=True)
    record = await hub.store.write(webhook_store.update_webhook, webhook_id, **values)
    if record is None:
        raise _not_found(webhook_id)
    hub.signals.lab_changed()
    return webhook_info(record)


@router.delete("/{webhook_id}", status_code=204, summary="Remove a webhook and its deliveries")
async def delete(webhook_id: RowId, hub: HubDep, _: Admin) -> Response:
    if not await hub.store.write(webhook_store.delete_webhook, webhook_id):
        raise _not_found(webhook_id)
    hub.signals.lab_changed()
    return Response(status_code=204)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=DeliveryList,
    summary="A webhook's deliveries, newest first, each with every attempt",
)
async def deliveries(
    webhook_id: RowId,
    hub: HubDep,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
) -> DeliveryList:
    await _webhook(hub, webhook_id)
    found = await hub.store.read(
        webhook_store.list_deliveries, webhook_id, limit=limit, before=before
    )
    return DeliveryList(server_id=hub.server_id, deliveries=[delivery_info(*d) for d in found])


@router.post(
    "/{webhook_id}/ping",
    status_code=202,
    response_model=DeliveryInfo,
    summary="Queue a test delivery (event 'ping') now",
)
async def ping(webhook_id: RowId, hub: HubDep, _: Admin) -> DeliveryInfo:
    record = await _webhook(hub, webhook_id)
    now = utcnow()
    payload = {"event": "ping", "occurred_at": now.isoformat(), "webhook_id": record.id}
    delivery_id = await hub.store.write(webhook_store.add_delivery, record.id, "ping", payload, now)
    hub.webhooks.wake.set()
    hub.signals.lab_changed()
    found = await hub.store.read(
        webhook_store.list_deliveries, record.id, limit=1, before=delivery_id + 1
    )
    return delivery_info(*found[0])


@router.post(
    "/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryInfo,
    summary="Queue a delivery again now (a failed one gets another day of retries)",
)
async def redeliver(delivery_id: RowId, hub: HubDep, _: Admin) -> DeliveryInfo:
    delivery = await hub.store.write(webhook_store.redeliver, delivery_id, utcnow())
    if delivery is None:
        raise ApiError(404, "delivery_not_found", f"delivery {delivery_id} does not exist")
    hub.webhooks.wake.set()
    hub.signals.lab_changed()
    return delivery_info(delivery, [])


async def _webhook(hub: Hub, webhook_id: int) -> WebhookRecord:
    record = await hub.store.read(webhook_store.get_webhook, webhook_id)
    if record is None:
        raise _not_found(webhook_id)
    return record


def _not_found(webhook_id: int) -> ApiError:
    return ApiError(404, "webhook_not_found", f"webhook {webhook_id} does not exist")
