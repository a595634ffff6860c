"""The sync service in-process (memory engine): barriers, signals, topics, cancellation,
timeouts, reconnects counted once, and bad requests answered with their location."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from testfleet.hub.sync.engine import MemoryEngine
from testfleet.hub.sync.service import SyncService

pytestmark = pytest.mark.anyio


class Client:
    """A fake WebSocket: frames in, replies (flattened) out."""

    def __init__(self, service: SyncService, run: str = "run-1") -> None:
        self.inbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.replies: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.task = asyncio.create_task(service.serve(self, run))

    async def receive_text(self) -> str:
        text = await self.inbox.get()
        if text is None:
            raise WebSocketDisconnect(1000)
        return text

    async def send_text(self, data: str) -> None:
        decoded = json.loads(data)
        self.replies.extend(decoded if isinstance(decoded, list) else [decoded])
        self.arrived.set()

    def send(self, *messages: dict[str, Any]) -> None:
        self.inbox.put_nowait(json.dumps(list(messages) if len(messages) > 1 else messages[0]))

    async def reply(self, request_id: int | None, kind: str | None = None) -> dict[str, Any]:
        async with asyncio.timeout(5):
            while True:
                for message in self.replies:
                    if message.get("id") == request_id and kind in (None, message["type"]):
                        self.replies.remove(message)
                        return message
                self.arrived.clear()
                await self.arrived.wait()

    async def close(self) -> None:
        self.inbox.put_nowait(None)
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture
async def service() -> SyncService:
    return SyncService("hub-test", MemoryEngine())


async def test_barrier_releases_when_the_target_is_reached(service: SyncService) -> None:
    clients = [Client(service) for _ in range(3)]
    for n, client in enumerate(clients):
        client.send({"type": "BARRIER", "id": 1, "state": "ready", "target": 3})
        client.send({"type": "SIGNAL_ENTRY", "id": 2, "state": "ready", "key": f"c{n}:2"})
    seqs = sorted([(await c.reply(2))["seq"] for c in clients])
    assert seqs == [1, 2, 3]
    for client in clients:
        assert await client.reply(1) == {"type": "RESULT", "id": 1, "seq": 3}
    snapshot = await service.snapshot("run-1")
    assert [(s.name, s.count) for s in snapshot.states] == [("ready", 3)]
    for client in clients:
        await client.close()


async def test_a_resent_signal_with_its_key_counts_once(service: SyncService) -> None:
    first = Client(service)
    first.send({"type": "SIGNAL_ENTRY", "id": 7, "state": "s", "key": "me:7"})
    assert (await first.reply(7))["seq"] == 1
    await first.close()
    again = Client(service)  # the same client after a reconnect
    again.send({"type": "SIGNAL_ENTRY", "id": 7, "state": "s", "key": "me:7"})
    assert (await again.reply(7))["seq"] == 1
    again.send({"type": "SIGNAL_ENTRY", "id": 8, "state": "s", "key": "me:8"})
    assert (await again.reply(8))["seq"] == 2
    await again.close()


async def test_subscribers_get_earlier_messages_then_live_ones(service: SyncService) -> None:
    publisher = Client(service)
    publisher.send(
        *({"type": "PUBLISH", "id": i, "topic": "t", "payload": {"n": i}} for i in range(1, 4))
    )
    assert [(await publisher.reply(i))["seq"] for i in range(1, 4)] == [1, 2, 3]
    late = Client(service)
    late.send({"type": "SUBSCRIBE", "id": 1, "topic": "t"})
    items: list[Any] = []
    while len(items) < 3:
        items += (await late.reply(1, "MESSAGES"))["items"]
    assert items == [[1, {"n": 1}], [2, {"n": 2}], [3, {"n": 3}]]
    publisher.send({"type": "PUBLISH", "id": 9, "topic": "t", "payload": "live"})
    assert (await late.reply(1, "MESSAGES"))["items"] == [[4, "live"]]
    resumed = Client(service)
    resumed.send({"type": "SUBSCRIBE", "id": 5, "topic": "t", "after": 3})
    assert (await resumed.reply(5, "MESSAGES"))["items"] == [[4, "live"]]
    for client in (publisher, late, resumed):
        await client.close()


async def test_cancel_ends_a_request_and_a_barrier_times_out(service: SyncService) -> None:
    client = Client(service)
    client.send({"type": "BARRIER", "id": 1, "state": "never", "target": 5})
    client.send({"type": "SUBSCRIBE", "id": 2, "topic": "quiet"})
    await asyncio.sleep(0.05)
    client.send({"type": "CANCEL", "id": 3, "target": 1}, {"type": "CANCEL", "id": 4, "target": 2})
    assert (await client.reply(1, "ERROR"))["code"] == "cancelled"
    assert (await client.reply(2, "ERROR"))["code"] == "cancelled"
    client.send({"type": "BARRIER", "id": 5, "state": "never", "target": 5, "timeout": 0.05})
    timeout = await client.reply(5, "ERROR")
    assert timeout["code"] == "timeout" and "0 of 5" in timeout["message"]
    assert service.core.waiting("run-1") == {}
    await client.close()


async def test_bad_requests_are_answered_with_where_and_the_connection_lives_on(
    service: SyncService,
) -> None:
    client = Client(service)
    client.inbox.put_nowait("{not json")
    assert (await client.reply(None, "ERROR"))["code"] == "invalid_request"
    client.send({"type": "BARRIER", "id": 4, "state": "s", "target": 0})
    error = await client.reply(4, "ERROR")
    assert error["code"] == "invalid_request" and error["message"].startswith("/BARRIER/target")
    client.send({"type": "SHOUT", "id": 5})
    assert (await client.reply(5, "ERROR"))["code"] == "invalid_request"
    client.send({"type": "SIGNAL_ENTRY", "id": 6, "state": "still-here"})
    assert (await client.reply(6))["seq"] == 1
    await client.close()
