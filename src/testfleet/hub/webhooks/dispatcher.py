"""Webhook deliveries in the background: events fanned out to deliveries, each attempted by
one hub, signed, retried with backoff for a day, every attempt recorded.

Nothing here blocks the hub: attempts run in tasks of their own, at most `CONCURRENCY` at
once and `PER_WEBHOOK` per webhook, each cut off after `ATTEMPT_TIMEOUT`, so an endpoint that
hangs or fails holds up its own deliveries only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter
from datetime import datetime, timedelta

import httpx

from testfleet.protocol.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from testfleet.protocol.wire import utcnow
from testfleet.store import webhook_queue as queue
from testfleet.store.db import Store

_log = logging.getLogger(__name__)
POLL = 1.0
CONCURRENCY = 32
PER_WEBHOOK = 4
ATTEMPT_TIMEOUT = 10.0
CLAIM_LEASE = 60.0
BACKOFF = (10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400)
"""Seconds before the 2nd, 3rd ... attempt; the last repeats until the day is over."""
USER_AGENT = "testfleet-webhooks"


def next_attempt(
    created_at: datetime, attempts: int, now: datetime, retry_for: float
) -> datetime | None:
    """When to try again after `attempts` failed ones (None: the retry period is over)."""
    delay = BACKOFF[min(attempts, len(BACKOFF)) - 1] * random.uniform(0.9, 1.1)
    moment = now + timedelta(seconds=delay)
    return moment if moment <= created_at + timedelta(seconds=retry_for) else None


class WebhookDispatcher:
    """Fans events out and makes the attempts this hub claims."""

    def __init__(
        self,
        server_id: str,
        store: Store,
        retry_for: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._server_id = server_id
        self._store = store
        self._retry_for = retry_for
        self._http = httpx.AsyncClient(
            timeout=ATTEMPT_TIMEOUT,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            transport=transport,
        )
        self._running: set[asyncio.Task[None]] = set()
        self._per_webhook: Counter[int] = Counter()
        self.wake = asyncio.Event()

    async def run(self) -> None:
        """Fan out and deliver until cancelled."""
        try:
            while True:
                self.wake.clear()
                try:
                    await self.tick()
                except Exception:  # the store is away, say: the next tick tries again
                    _log.exception("webhook deliveries: a pass failed; trying again")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL):
                        await self.wake.wait()
        finally:
            await self.close()

    async def tick(self) -> int:
        """One pass: queue deliveries for new events, start the due attempts; returns how many
        attempts it started."""
        now = utcnow()
        await self._store.write(queue.fan_out, now)
        claimed = await self._store.write(
            queue.claim_due,
            self._server_id,
            now,
            now + timedelta(seconds=CLAIM_LEASE),
            CONCURRENCY - len(self._running),
            dict(self._per_webhook),
            PER_WEBHOOK,
        )
        for item in claimed:
            self._per_webhook[item.delivery.webhook_id] += 1
            task = asyncio.create_task(self._attempt(item), name=f"webhook-{item.delivery.id}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return len(claimed)

    async def _attempt(self, item: queue.Claimed) -> None:
        delivery = item.delivery
        try:
            body = json.dumps(
                {**delivery.payload, "delivery_id": delivery.id}, separators=(",", ":")
            ).encode()
            stamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                EVENT_HEADER: delivery.event,
                DELIVERY_HEADER: str(delivery.id),
                TIMESTAMP_HEADER: str(stamp),
                SIGNATURE_HEADER: sign(item.secret, stamp, body),
            }
            at = utcnow()
            started = time.perf_counter()
            status: int | None = None
            error: str | None = None
            try:
                response = await self._http.post(item.url, content=body, headers=headers)
                status = response.status_code
                if not response.is_success:
                    error = f"HTTP {status}: {response.text[:200]}"
            except httpx.HTTPError as failure:
                error = f"{type(failure).__name__}: {failure}"[:500]
            duration = (time.perf_counter() - started) * 1000
            delivered = error is None
            retry_at = None
            if not delivered and status != 410:  # 410 Gone: the receiver wants no more
                retry_at = next_attempt(
                    delivery.created_at, delivery.attempts + 1, utcnow(), self._retry_for
                )
            result = queue.AttemptResult(at, duration, status, error, delivered, retry_at)
            await self._store.write(queue.record_attempt, delivery.id, self._server_id, result)
            if not delivered:
                _log.info("webhook delivery %d to %s failed: %s", delivery.id, item.url, error)
        except Exception:
            _log.exception("webhook delivery %d: recording the attempt failed", delivery.id)
        finally:
            self._per_webhook[delivery.webhook_id] -= 1
            if self._per_webhook[delivery.webhook_id] <= 0:
                del self._per_webhook[delivery.webhook_id]

    async def close(self) -> None:
        """Stop the attempts under way and give their claims back."""
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._store.write(queue.release_claims, self._server_id)
        await self._http.aclose()
