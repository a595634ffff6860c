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


class AutomationMethods:
    """Webhook and schedule methods of the blocking `Client`."""

    def _call(self, call: Call[T]) -> T:
        raise NotImplementedError

    def create_webhook(self, body: WebhookCreate) -> WebhookCreated:
        """Register a webhook; the answer is the only place its secret appears."""
        return self._call(_json("POST", f"{API}/webhooks", WebhookCreated, body))

    def webhooks(self) -> WebhookList:
        """Every webhook (without secrets)."""
        return self._call(_get(f"{API}/webhooks", WebhookList))

    def deliveries(self, webhook_id: int, limit: int | None = None) -> DeliveryList:
        """A webhook's deliveries, newest first, with their attempts."""
        return self._call(
            _get(f"{API}/webhooks/{webhook_id}/deliveries", DeliveryList, limit=limit)
        )

    def delete_webhook(self, webhook_id: int) -> None:
        """Remove a webhook."""
        self._call(Call("DELETE", f"{API}/webhooks/{webhook_id}", responses.parse_nothing))

    def ping_webhook(self, webhook_id: int) -> None:
        """Queue a test delivery."""
        self._call(Call("POST", f"{API}/webhooks/{webhook_id}/ping", responses.parse_nothing))

    def create_schedule(self, body: ScheduleCreate) -> ScheduleInfo:
        """Add a schedule."""
        return self._call(_json("POST", f"{API}/schedules", ScheduleInfo, body))

    def schedules(self) -> ScheduleList:
        """Every schedule with its next fire times."""
        return self._call(_get(f"{API}/schedules", ScheduleList))

    def update_schedule(self, schedule_id: int, body: ScheduleUpdate) -> ScheduleInfo:
        """Pause, resume or retime a schedule."""
        return self._call(_json("PATCH", f"{API}/schedules/{schedule_id}", ScheduleInfo, body))

    def delete_schedule(self, schedule_id: int) -> None:
        """Remove a schedule (its jobs stay)."""
        self._call(Call("DELETE", f"{API}/schedules/{schedule_id}", responses.parse_nothing))

    def run_schedule(self, schedule_id: int) -> ScheduleRun:
        """Start a schedule's job now."""
        path = f"{API}/schedules/{schedule_id}/run"
        return self._call(Call("POST", path, lambda r: responses.parse_model(r, ScheduleRun)))
