"""One client's WebSocket to the sync service of one run: requests in, answers out.

Answers are queued and sent together (a frame holds a JSON list when there are several);
a subscription waits while its connection has a lot unsent, so a slow reader holds back its
own messages only. Closing the connection ends its barriers and subscriptions; what it
signalled and published stays.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Protocol

from pydantic import ValidationError

from testfleet.hub.sync.core import SyncCore, SyncFailure
from testfleet.protocol.sync import (
    MAX_PAYLOAD_BYTES,
    SYNC_REQUESTS,
    Barrier,
    Cancel,
    Publish,
    SignalEntry,
    Subscribe,
    SyncError,
)

_log = logging.getLogger(__name__)
HIGH_WATER = 1_000_000  # unsent bytes past which subscriptions wait
MAX_REQUESTS = 10_000  # barriers and subscriptions one connection may hold open


class SyncSocket(Protocol):
    """What the connection needs of a WebSocket (Starlette's, or a test's)."""

    async def receive_text(self) -> str: ...

    async def send_text(self, data: str) -> None: ...


class SyncConnection:
    """Serves one client until it disconnects."""

    def __init__(self, socket: SyncSocket, run_id: str, core: SyncCore) -> None:
        self._socket = socket
        self._run = run_id
        self._core = core
        self._outbox: list[str] = []
        self._unsent = 0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._open: dict[int, asyncio.Task[None]] = {}

    async def serve(self) -> None:
        """Read requests until the socket closes (its exception ends the call)."""
        writer = asyncio.create_task(self._write())
        try:
            while True:
                self._frame(await self._socket.receive_text())
        finally:
            for task in self._open.values():
                task.cancel()
            writer.cancel()
            await asyncio.gather(writer, *self._open.values(), return_exceptions=True)

    # ---- out ---------------------------------------------------------------------------------

    def _queue(self, text: str) -> None:
        self._outbox.append(text)
        self._unsent += len(text)
        if self._unsent > HIGH_WATER:
            self._room.clear()
        self._wake.set()

    def _error(self, request_id: int | None, code: str, message: str) -> None:
        self._queue(SyncError(id=request_id, code=code, message=message).model_dump_json())

    async def _write(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._outbox = self._outbox, []
            self._unsent = 0
            self._room.set()
            if batch:
                await self._socket.send_text(
                    batch[0] if len(batch) == 1 else "[" + ",".join(batch) + "]"
                )

    # ---- in ----------------------------------------------------------------------------------

    def _frame(self, text: str) -> None:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as error:
            self._error(None, "invalid_request", f"the frame is not JSON: {error}")
            return
        for item in data if isinstance(data, list) else [data]:
            try:
                request = SYNC_REQUESTS.validate_python(item)
            except ValidationError as error:
                first = error.errors()[0]
                where = "/".join(str(p) for p in first["loc"])
                request_id = item.get("id") if isinstance(item, dict) else None
                self._error(
                    request_id if isinstance(request_id, int) else None,
                    "invalid_request",
                    f"/{where}: {first['msg']}",
                )
                continue
            self._dispatch(request)

    def _dispatch(self, request: Any) -> None:
        match request:
            case SignalEntry():
                self._answer(request.id, self._core.signal(self._run, request.state, request.key))
            case Publish():
                payload = json.dumps(request.payload, separators=(",", ":"))
                if len(payload) > MAX_PAYLOAD_BYTES:
                    self._error(
                        request.id, "invalid_request", f"/payload: over {MAX_PAYLOAD_BYTES} bytes"
                    )
                    return
                future = self._core.publish(self._run, request.topic, request.key, payload)
                self._answer(request.id, future)
            case Barrier():
                self._start(request.id, self._barrier(request))
            case Subscribe():
                self._start(request.id, self._subscribe(request))
            case Cancel():
                task = self._open.pop(request.target, None)
                if task is not None:
                    task.cancel()
                self._queue(f'{{"type":"RESULT","id":{request.id},"seq":0}}')

    def _answer(self, request_id: int, future: asyncio.Future[int]) -> None:
        def done(finished: asyncio.Future[int]) -> None:
            error = finished.exception()
            if isinstance(error, SyncFailure):
                self._error(request_id, error.error.code, error.error.message)
            elif error is not None:
                self._error(request_id, "internal_error", repr(error))
            else:
                self._queue(f'{{"type":"RESULT","id":{request_id},"seq":{finished.result()}}}')

        future.add_done_callback(done)

    def _start(self, request_id: int, work: Any) -> None:
        if request_id in self._open or len(self._open) >= MAX_REQUESTS:
            work.close()
            reason = "is in use" if request_id in self._open else f"over {MAX_REQUESTS} open"
            self._error(request_id, "invalid_request", f"/id: request id {request_id} {reason}")
            return
        task = asyncio.create_task(work)
        self._open[request_id] = task

        def ended(finished: asyncio.Task[None]) -> None:
            if self._open.get(request_id) is finished:
                del self._open[request_id]
            if finished.cancelled():
                self._error(request_id, "cancelled", "cancelled")
            elif (error := finished.exception()) is not None:
                if isinstance(error, SyncFailure):
                    self._error(request_id, error.error.code, error.error.message)
                else:
                    _log.error("sync request %d failed: %r", request_id, error)
                    self._error(request_id, "internal_error", repr(error))

        task.add_done_callback(ended)

    async def _barrier(self, request: Barrier) -> None:
        count = await self._core.barrier(self._run, request.state, request.target, request.timeout)
        self._queue(f'{{"type":"RESULT","id":{request.id},"seq":{count}}}')

    async def _subscribe(self, request: Subscribe) -> None:
        prefix = f'{{"type":"MESSAGES","id":{request.id},"items":['

        async def deliver(page: list[tuple[int, str]]) -> None:
            await self._room.wait()
            self._queue(prefix + ",".join(f"[{seq},{payload}]" for seq, payload in page) + "]}")

        await self._core.follow(self._run, request.topic, request.after, deliver)
