"""The sync service's client (asyncio): signal_entry, barrier, signal_and_wait, publish and
subscribe over one WebSocket, with request ids, cancellation and reconnection.

Requests not yet answered are kept and sent again after a reconnect: SIGNAL_ENTRY and PUBLISH
carry a key, so the hub counts them once; a subscription resumes after the last message it
received. The wire protocol is `testfleet.protocol.sync` (plain JSON here: importing the SDK
stays cheap for plans that start many instances).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

RECONNECT_FOR = 60.0
"""How long the client tries to reconnect before failing every request it holds."""


class SyncError(Exception):
    """A request the sync service refused or could not answer; `code` says which way."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class BarrierTimeout(SyncError, TimeoutError):
    """A barrier's target was not reached within its timeout."""


class _Inbox:
    """A subscription's messages not read yet (a deque: cheaper than asyncio.Queue per item),
    and how it ended."""

    def __init__(self) -> None:
        self.items: deque[tuple[int, Any]] = deque()
        self.arrived = asyncio.Event()
        self.ended: SyncError | None = None

    def put(self, item: tuple[int, Any]) -> None:
        self.items.append(item)
        self.arrived.set()

    def end(self, error: SyncError) -> None:
        self.ended = error
        self.arrived.set()


@dataclass(eq=False)
class _Pending:
    message: dict[str, Any]
    future: asyncio.Future[int] | None = None
    queue: _Inbox | None = None
    received: int = 0
    deadline: float | None = None


class Subscription:
    """The messages of a topic, in order: `async for seq, payload in subscription`."""

    def __init__(self, client: SyncClient, request_id: int, pending: _Pending) -> None:
        self._client = client
        self.id = request_id
        self._pending = pending
        self._ended: SyncError | None = None

    def __aiter__(self) -> AsyncIterator[tuple[int, Any]]:
        return self

    async def __anext__(self) -> tuple[int, Any]:
        return await self.next()

    async def next(self, timeout: float | None = None) -> tuple[int, Any]:  # noqa: ASYNC109 (the sync API's own timeout)
        """The next message as (seq, payload); StopAsyncIteration once cancelled."""
        inbox = self._pending.queue
        assert inbox is not None
        if not inbox.items and inbox.ended is None:
            async with asyncio.timeout(timeout):
                while not inbox.items and inbox.ended is None:
                    inbox.arrived.clear()
                    await inbox.arrived.wait()
        if inbox.items:
            return inbox.items.popleft()
        assert inbox.ended is not None
        if inbox.ended.code == "cancelled" or self._ended is not None:
            raise StopAsyncIteration
        self._ended = inbox.ended
        raise inbox.ended

    async def cancel(self) -> None:
        """Stop receiving."""
        await self._client._cancel(self.id)


@dataclass(eq=False)
class SyncClient:
    """One connection to the sync service of one run (`url` ends with /api/v1/sync/<run>)."""

    url: str
    token: str | None = None
    reconnect_for: float = RECONNECT_FOR
    client_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    _pending: dict[int, _Pending] = field(default_factory=dict)
    _outbox: list[str] = field(default_factory=list)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _next_id: int = 0
    _runner: asyncio.Task[None] | None = None
    _connected: asyncio.Event = field(default_factory=asyncio.Event)
    _closed: bool = False
    _failure: SyncError | None = None

    async def connect(self) -> None:
        """Connect (and stay connected in the background until `close`)."""
        if self._runner is None:
            self._runner = asyncio.create_task(self._stay_connected())
        waiter = asyncio.ensure_future(self._connected.wait())
        done, _ = await asyncio.wait({waiter, self._runner}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._runner in done:
            self._runner.result()
            raise self._failure or SyncError("closed", "the connection ended")

    async def close(self) -> None:
        """Close the connection; requests still waiting fail with code `closed`."""
        self._closed = True
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        self._fail_all(SyncError("closed", "the client was closed"))

    async def __aenter__(self) -> SyncClient:
        await self.connect()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # ---- requests ------------------------------------------------------------------------

    def _request(self, message: dict[str, Any], *, stream: bool = False) -> tuple[int, _Pending]:
        if self._failure is not None:
            raise self._failure
        request_id = message["id"] = self._new_id()
        if message["type"] in ("SIGNAL_ENTRY", "PUBLISH"):
            message["key"] = f"{self.client_id}:{request_id}"
        pending = _Pending(message)
        if stream:
            pending.queue = _Inbox()
        else:
            pending.future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = pending
        self._send(message)
        return request_id, pending

    async def _answer(self, message: dict[str, Any]) -> int:
        request_id, pending = self._request(message)
        assert pending.future is not None
        try:
            return await pending.future
        except asyncio.CancelledError:
            if self._pending.pop(request_id, None) is not None and message["type"] == "BARRIER":
                self._send({"type": "CANCEL", "id": self._new_id(), "target": request_id})
            raise

    async def signal_entry(self, state: str) -> int:
        """Count this instance into `state`; returns its sequence number (1-based)."""
        return await self._answer({"type": "SIGNAL_ENTRY", "state": state})

    async def barrier(self, state: str, target: int, timeout: float | None = None) -> None:  # noqa: ASYNC109 (the sync API's own timeout)
        """Wait until `target` instances have signalled `state`; BarrierTimeout after
        `timeout` seconds."""
        message: dict[str, Any] = {"type": "BARRIER", "state": state, "target": target}
        if timeout is not None:
            message["timeout"] = timeout
        await self._answer(message)

    async def signal_and_wait(self, state: str, target: int, timeout: float | None = None) -> int:  # noqa: ASYNC109 (the sync API's own timeout)
        """signal_entry, then the barrier; returns the sequence number."""
        seq = await self.signal_entry(state)
        await self.barrier(state, target, timeout)
        return seq

    def publish(self, topic: str, payload: Any) -> asyncio.Future[int]:
        """Append `payload` (JSON-serialisable) to `topic`: sent at once; await the result
        for its sequence number (`await client.publish(...)`). Publishing many without awaiting
        each in turn needs no task per message: keep the futures, gather them later."""
        _, pending = self._request({"type": "PUBLISH", "topic": topic, "payload": payload})
        assert pending.future is not None
        return pending.future

    async def publish_many(self, topic: str, payloads: Iterable[Any]) -> list[int]:
        """Append several payloads to `topic` in order (sent together); their sequence
        numbers."""
        futures = [self.publish(topic, payload) for payload in payloads]
        return list(await asyncio.gather(*futures))

    async def subscribe(self, topic: str, after: int = 0) -> Subscription:
        """Every message of `topic` after `after` (all of them by default), then live ones."""
        message = {"type": "SUBSCRIBE", "topic": topic, "after": after}
        request_id, pending = self._request(message, stream=True)
        pending.received = after
        return Subscription(self, request_id, pending)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def _cancel(self, request_id: int) -> None:
        if request_id in self._pending:
            self._send({"type": "CANCEL", "id": self._new_id(), "target": request_id})

    # ---- the connection ------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        self._outbox.append(json.dumps(message, separators=(",", ":")))
        self._wake.set()

    def _fail_all(self, error: SyncError) -> None:
        for pending in self._pending.values():
            if pending.future is not None and not pending.future.done():
                pending.future.set_exception(error)
            if pending.queue is not None:
                pending.queue.end(error)
        self._pending.clear()

    async def _stay_connected(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_for
        wait = 0.05
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        while not self._closed:
            try:
                async with connect(
                    self.url,
                    additional_headers=headers,
                    open_timeout=10,
                    max_size=16 * 2**20,
                    compression=None,  # small JSON on a LAN: deflate costs more than it saves
                ) as websocket:
                    self._resend_pending()
                    self._connected.set()
                    await self._serve(websocket)
                problem = "the hub closed the connection"
            except InvalidStatus as error:
                status = error.response.status_code
                if 400 <= status < 500:
                    self._failure = SyncError(
                        "refused", f"the hub refused the connection: {status}"
                    )
                    break
                problem = f"HTTP {status}"
            except InvalidURI as error:
                self._failure = SyncError("invalid_url", str(error))
                break
            except ConnectionClosed as error:
                if error.rcvd is not None and error.rcvd.code == 1008:
                    self._failure = SyncError("refused", error.rcvd.reason or "policy violation")
                    break
                problem = f"connection lost: {error}"
            except (OSError, InvalidHandshake, TimeoutError) as error:
                problem = f"{type(error).__name__}: {error}"
            if self._connected.is_set():
                self._connected.clear()
                deadline = loop.time() + self.reconnect_for
                wait = 0.05
            if loop.time() > deadline:
                self._failure = SyncError(
                    "unreachable", f"the sync service is unreachable: {problem}"
                )
                break
            await asyncio.sleep(wait * random.uniform(0.8, 1.2))
            wait = min(wait * 2, 2.0)
        if self._failure is not None:
            self._fail_all(self._failure)

    def _resend_pending(self) -> None:
        """After a (re)connection: every unanswered request again, subscriptions resumed."""
        self._outbox.clear()
        now = asyncio.get_running_loop().time()
        for pending in self._pending.values():
            message = dict(pending.message)
            if message["type"] == "SUBSCRIBE":
                message["after"] = pending.received
            if message["type"] == "BARRIER" and "timeout" in message:
                if pending.deadline is None:
                    pending.deadline = now + message["timeout"]
                message["timeout"] = max(0.001, pending.deadline - now)
            self._send(message)

    async def _serve(self, websocket: ClientConnection) -> None:
        writer = asyncio.create_task(self._write(websocket))
        try:
            async for frame in websocket:
                self._receive(json.loads(frame))
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await writer

    async def _write(self, websocket: ClientConnection) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._outbox = self._outbox, []
            if batch:
                await websocket.send(batch[0] if len(batch) == 1 else "[" + ",".join(batch) + "]")

    def _receive(self, data: Any) -> None:
        for message in data if isinstance(data, list) else [data]:
            kind = message.get("type")
            pending = self._pending.get(message.get("id"))
            if pending is None:
                continue
            if kind == "RESULT" and pending.future is not None:
                del self._pending[message["id"]]
                if not pending.future.done():
                    pending.future.set_result(int(message["seq"]))
            elif kind == "MESSAGES" and pending.queue is not None:
                for seq, payload in message["items"]:
                    if seq > pending.received:
                        pending.received = seq
                        pending.queue.put((seq, payload))
            elif kind == "ERROR":
                del self._pending[message["id"]]
                cls = BarrierTimeout if message.get("code") == "timeout" else SyncError
                error = cls(message.get("code", "error"), message.get("message", ""))
                if pending.future is not None and not pending.future.done():
                    pending.future.set_exception(error)
                if pending.queue is not None:
                    pending.queue.end(error)
