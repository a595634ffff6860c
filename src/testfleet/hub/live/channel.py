"""One client's live channel: it subscribes to jobs and to lab changes, the hub pushes.

One WebSocket carries everything a page follows, so a browser with many tabs open never
runs out of its few HTTP connections per host (server-sent events would hold one each).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from testfleet.hub.live.job_feed import Ended, JobFeeds
from testfleet.hub.live.lab_watch import LabWatch
from testfleet.hub.status import build_event
from testfleet.protocol.lab import (
    ClientMessage,
    FollowJob,
    JobEnded,
    JobEvent,
    LabChanged,
    LiveError,
    UnfollowJob,
    WatchLab,
)

_log = logging.getLogger(__name__)
MAX_FOLLOWED = 20
MAX_MESSAGE = 4096
OUTBOX = 2000
"""Messages queued for a slow client; past that its followers wait (nothing is dropped)."""
_TAGS = ("follow_job", "unfollow_job", "watch_lab")
_messages: TypeAdapter[FollowJob | UnfollowJob | WatchLab] = TypeAdapter(ClientMessage)


class LiveChannel:
    """Serves one client's WebSocket until it closes."""

    def __init__(
        self,
        socket: WebSocket,
        *,
        feeds: JobFeeds,
        lab: LabWatch,
        wait: float = 1.0,
    ) -> None:
        self._socket = socket
        self._feeds = feeds
        self._lab = lab
        self._wait = wait
        self._outbox: asyncio.Queue[BaseModel] = asyncio.Queue(OUTBOX)
        self._followers: dict[int, asyncio.Task[None]] = {}
        self._watcher: asyncio.Task[None] | None = None

    async def serve(self) -> None:
        """Read the client's messages and push what it asked for, until it goes."""
        writer = asyncio.create_task(self._write())
        try:
            await self._read()
        finally:
            tasks = [*self._followers.values(), writer]
            if self._watcher is not None:
                tasks.append(self._watcher)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self) -> None:
        while True:
            try:
                text = await self._socket.receive_text()
            except (WebSocketDisconnect, RuntimeError, KeyError):
                return
            if len(text) > MAX_MESSAGE:
                await self._error("too_large", f"a message may be at most {MAX_MESSAGE} bytes")
                continue
            try:
                message = _messages.validate_json(text)
            except ValidationError as error:
                first = error.errors()[0]
                loc = first["loc"]
                if loc and loc[0] in _TAGS:  # the union's member, not a place in the message
                    loc = loc[1:]
                where = "/" + "/".join(str(p) for p in loc)
                await self._error("invalid_message", first["msg"], where)
                continue
            await self._handle(message)

    async def _handle(self, message: FollowJob | UnfollowJob | WatchLab) -> None:
        match message:
            case FollowJob():
                self._stop_following(message.job_id)
                if len(self._followers) >= MAX_FOLLOWED:
                    await self._error(
                        "too_many", f"a channel follows at most {MAX_FOLLOWED} jobs at once"
                    )
                    return
                self._followers[message.job_id] = asyncio.create_task(self._follow(message))
            case UnfollowJob():
                self._stop_following(message.job_id)
            case WatchLab():
                if self._watcher is None:
                    self._watcher = asyncio.create_task(self._watch_lab())

    def _stop_following(self, job_id: int) -> None:
        task = self._followers.pop(job_id, None)
        if task is not None:
            task.cancel()

    async def _follow(self, request: FollowJob) -> None:
        feed = self._feeds.follow(request.job_id, request.after, request.kinds, wait=self._wait)
        try:
            async with contextlib.aclosing(feed):
                async for item in feed:
                    if isinstance(item, Ended):
                        await self._outbox.put(JobEnded(job_id=request.job_id, state=item.state))
                        break
                    for row in item:
                        await self._outbox.put(JobEvent(event=build_event(row)))
        except Exception as error:  # the store is away: say so; the client may follow again
            _log.warning("live follow of job %d failed: %r", request.job_id, error)
            await self._outbox.put(
                LiveError(code="store_unavailable", message=f"following stopped: {error!r}")
            )
        finally:
            if self._followers.get(request.job_id) is asyncio.current_task():
                del self._followers[request.job_id]

    async def _watch_lab(self) -> None:
        subscription = self._lab.subscribe()
        try:
            while True:
                topics = await subscription.next()
                await self._outbox.put(LabChanged(topics=topics))
        finally:
            self._lab.unsubscribe(subscription)

    async def _error(self, code: str, message: str, location: str = "") -> None:
        await self._outbox.put(LiveError(code=code, message=message, location=location))

    async def _write(self) -> None:
        while True:
            message = await self._outbox.get()
            try:
                await self._socket.send_text(message.model_dump_json())
            except Exception:  # the client is gone; the reader notices too
                return
