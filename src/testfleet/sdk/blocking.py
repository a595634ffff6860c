"""The sync client for case functions that block: the asyncio client runs on a loop in a
background thread; each call waits for its answer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from testfleet.sdk.sync import Subscription, SyncClient

T = TypeVar("T")


class BlockingSubscription:
    """A subscription read by blocking: `for seq, payload in subscription`."""

    def __init__(self, sync: BlockingSync, subscription: Subscription) -> None:
        self._sync = sync
        self._subscription = subscription

    def next(self, timeout: float | None = None) -> tuple[int, Any]:
        """The next message; TimeoutError after `timeout` seconds, StopIteration once
        cancelled."""
        try:
            return self._sync._call(self._subscription.next(timeout))
        except StopAsyncIteration:
            raise StopIteration from None

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        return self

    def __next__(self) -> tuple[int, Any]:
        return self.next()

    def cancel(self) -> None:
        """Stop receiving."""
        self._sync._call(self._subscription.cancel())


class BlockingSync:
    """`SyncClient`'s calls, blocking. Open with `start()`, end with `close()`."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="testfleet-sync", daemon=True
        )
        self._client: SyncClient | None = None
        self._url = url
        self._token = token

    def start(self) -> BlockingSync:
        """Start the loop thread and connect."""
        self._thread.start()

        async def make() -> SyncClient:
            client = SyncClient(self._url, self._token)
            await client.connect()
            return client

        self._client = self._call(make())
        return self

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    @property
    def client(self) -> SyncClient:
        """The asyncio client underneath (runs on the background loop)."""
        assert self._client is not None, "call start() first"
        return self._client

    def signal_entry(self, state: str) -> int:
        """Count this instance into `state`; returns its sequence number."""
        return self._call(self.client.signal_entry(state))

    def barrier(self, state: str, target: int, timeout: float | None = None) -> None:
        """Wait until `target` instances have signalled `state`."""
        self._call(self.client.barrier(state, target, timeout))

    def signal_and_wait(self, state: str, target: int, timeout: float | None = None) -> int:
        """signal_entry, then the barrier."""
        return self._call(self.client.signal_and_wait(state, target, timeout))

    def publish(self, topic: str, payload: Any) -> int:
        """Append `payload` to `topic`; returns its sequence number."""

        async def publish() -> int:
            return await self.client.publish(topic, payload)

        return self._call(publish())

    def publish_many(self, topic: str, payloads: list[Any]) -> list[int]:
        """Append several payloads to `topic` in order; their sequence numbers."""
        return self._call(self.client.publish_many(topic, payloads))

    def subscribe(self, topic: str, after: int = 0) -> BlockingSubscription:
        """Every message of `topic` (after `after`), then live ones."""
        return BlockingSubscription(self, self._call(self.client.subscribe(topic, after)))

    def close(self) -> None:
        """Disconnect and stop the loop thread."""
        if self._client is not None:
            self._call(self._client.close())
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._loop.close()
