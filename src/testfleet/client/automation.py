"""Webhooks and schedules: request descriptions and the methods both clients share."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel

from testfleet.client import responses
from testfleet.client.calls import API, JSON, Call, Params
from testfleet.protocol.automation import (
    DeliveryList,
    ScheduleCreate,
    ScheduleInfo,
    ScheduleList,
    ScheduleRun,
    ScheduleUpdate,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def _json(method: str, path: str, model: type[M], body: BaseModel) -> Call[M]:
    content = json.dumps(body.model_dump(mode="json", exclude_none=True)).encode()
    return Call(
        method,
        path,
        lambda r: responses.parse_model(r, model),
        content=content,
        headers={"Content-Type": JSON},
    )


def _get(path: str, model: type[M], **params: Any) -> Call[M]:
    query: Params = [(k, str(v)) for k, v in params.items() if v is not None]
    return Call("GET", path, lambda r: responses.parse_model(r, model), params=query)


def create_webhook(body: WebhookCreate) -> Call[WebhookCreated]:
    """`POST /api/v1/webhooks`."""
    return _json("POST", f"{API}/webhooks", WebhookCreated, body)


def list_webhooks() -> Call[WebhookList]:
    """`GET /api/v1/webhooks`."""
    return _get(f"{API}/webhooks", WebhookList)


def deliveries(webhook_id: int, limit: int | None = None) -> Call[DeliveryList]:
    """`GET /api/v1/webhooks/{id}/deliveries`."""
    return _get(f"{API}/webhooks/{webhook_id}/deliveries", DeliveryList, limit=limit)


def delete_webhook(webhook_id: int) -> Call[None]:
    """`DELETE /api/v1/webhooks/{id}`."""
    return Call("DELETE", f"{API}/webhooks/{webhook_id}", responses.parse_nothing)


def ping_webhook(webhook_id: int) -> Call[None]:
    """`POST /api/v1/webhooks/{id}/ping`."""
    return Call("POST", f"{API}/webhooks/{webhook_id}/ping", responses.parse_nothing)


def create_schedule(body: ScheduleCreate) -> Call[ScheduleInfo]:
    """`POST /api/v1/schedules`."""
    return _json("POST", f"{API}/schedules", ScheduleInfo, body)


def list_schedules() -> Call[ScheduleList]:
    """`GET /api/v1/schedules`."""
    return _get(f"{API}/schedules", ScheduleList)


def update_schedule(schedule_id: int, body: ScheduleUpdate) -> Call[ScheduleInfo]:
    """`PATCH /api/v1/schedules/{id}`."""
    return _json("PATCH", f"{API}/schedules/{schedule_id}", ScheduleInfo, body)


def delete_schedule(schedule_id: int) -> Call[None]:
    """`DELETE /api/v1/schedules/{id}`."""
    return Call("DELETE", f"{API}/schedules/{schedule_id}", responses.parse_nothing)


def run_schedule(schedule_id: int) -> Call[ScheduleRun]:
    """`POST /api/v1/schedules/{id}/run`."""
    path = f"{API}/schedules/{schedule_id}/run"
    return Call("POST", path, lambda r: responses.parse_model(r, ScheduleRun))


class AutomationMethods:
    """Webhook and schedule methods of the blocking `Client`."""

    def _call(self, call: Call[T]) -> T:
        raise NotImplementedError

    def create_webhook(self, body: WebhookCreate) -> WebhookCreated:
        """Register a webhook; the answer is the only place its secret appears."""
        return self._call(create_webhook(body))

    def webhooks(self) -> WebhookList:
        """Every webhook (without secrets)."""
        return self._call(list_webhooks())

    def deliveries(self, webhook_id: int, limit: int | None = None) -> DeliveryList:
        """A webhook's deliveries, newest first, with their attempts."""
        return self._call(deliveries(webhook_id, limit))

    def delete_webhook(self, webhook_id: int) -> None:
        """Remove a webhook."""
        self._call(delete_webhook(webhook_id))

    def ping_webhook(self, webhook_id: int) -> None:
        """Queue a test delivery."""
        self._call(ping_webhook(webhook_id))

    def create_schedule(self, body: ScheduleCreate) -> ScheduleInfo:
        """Add a schedule."""
        return self._call(create_schedule(body))

    def schedules(self) -> ScheduleList:
        """Every schedule with its next fire times."""
        return self._call(list_schedules())

    def update_schedule(self, schedule_id: int, body: ScheduleUpdate) -> ScheduleInfo:
        """Pause, resume or retime a schedule."""
        return self._call(update_schedule(schedule_id, body))

    def delete_schedule(self, schedule_id: int) -> None:
        """Remove a schedule (its jobs stay)."""
        self._call(delete_schedule(schedule_id))

    def run_schedule(self, schedule_id: int) -> ScheduleRun:
        """Start a schedule's job now."""
        return self._call(run_schedule(schedule_id))


class AsyncAutomationMethods:
    """Webhook and schedule methods of the asyncio `AsyncClient`."""

    async def _call(self, call: Call[T]) -> T:
        raise NotImplementedError

    async def create_webhook(self, body: WebhookCreate) -> WebhookCreated:
        """Register a webhook; the answer is the only place its secret appears."""
        return await self._call(create_webhook(body))

    async def webhooks(self) -> WebhookList:
        """Every webhook (without secrets)."""
        return await self._call(list_webhooks())

    async def deliveries(self, webhook_id: int, limit: int | None = None) -> DeliveryList:
        """A webhook's deliveries, newest first, with their attempts."""
        return await self._call(deliveries(webhook_id, limit))

    async def delete_webhook(self, webhook_id: int) -> None:
        """Remove a webhook."""
        await self._call(delete_webhook(webhook_id))

    async def ping_webhook(self, webhook_id: int) -> None:
        """Queue a test delivery."""
        await self._call(ping_webhook(webhook_id))

    async def create_schedule(self, body: ScheduleCreate) -> ScheduleInfo:
        """Add a schedule."""
        return await self._call(create_schedule(body))

    async def schedules(self) -> ScheduleList:
        """Every schedule with its next fire times."""
        return await self._call(list_schedules())

    async def update_schedule(self, schedule_id: int, body: ScheduleUpdate) -> ScheduleInfo:
        """Pause, resume or retime a schedule."""
        return await self._call(update_schedule(schedule_id, body))

    async def delete_schedule(self, schedule_id: int) -> None:
        """Remove a schedule (its jobs stay)."""
        await self._call(delete_schedule(schedule_id))

    async def run_schedule(self, schedule_id: int) -> ScheduleRun:
        """Start a schedule's job now."""
        return await self._call(run_schedule(schedule_id))
