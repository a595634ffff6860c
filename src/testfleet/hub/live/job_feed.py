"""A job's events as they are stored, for every live follower on this hub (the SSE form of
`GET /api/v1/jobs/{id}/events` and the live channel's `follow_job`).

Followers of one job share one reader: it reads each new event from the store once and keeps
the newest `BUFFER` in memory, so that fifty open pages cost one read per change, not fifty.
A follower that starts further back (or falls behind the buffer) reads its own way from the
store until it has caught up, then follows the shared buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from testfleet.hub.signals import Signals
from testfleet.store import events as event_store
from testfleet.store import jobs as job_store
from testfleet.store.db import Store
from testfleet.store.records import JobRecord, StoredEvent

BUFFER = 2000
"""Events of a job kept in memory for its followers."""
READ_LIMIT = 1000


@dataclass(frozen=True)
class Ended:
    """The job has finished and every event of it was yielded (`state` "deleted": it is
    gone)."""

    state: str


FeedItem = list[StoredEvent] | Ended


class _SharedReader:
    """One job's newest events, read once for all its followers here."""

    def __init__(self, store: Store, signals: Signals, job_id: int) -> None:
        self.store = store
        self.signals = signals
        self.job_id = job_id
        self.events: deque[StoredEvent] = deque(maxlen=BUFFER)
        self.floor: int | None = None
        """Every event of the job with an id above `floor` (up to `position`) is buffered;
        None until the reader has started."""
        self.position = 0
        self.ended: Ended | None = None
        self.failed: BaseException | None = None
        self.followers = 0
        self._news = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def _tell(self) -> None:
        news, self._news = self._news, asyncio.Event()
        news.set()

    async def news(self, seconds: float) -> None:
        """Wait until the reader has something new, or `seconds` pass."""
        news = self._news
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await news.wait()

    async def run(self, wait: float) -> None:
        try:
            newest = await self.store.read(event_store.list_events, self.job_id, limit=1, last=True)
            self.floor = self.position = newest[0].id if newest else 0
            self._tell()
            while True:
                seen = self.signals.job_version(self.job_id)
                rows, job = await self.store.read(_events_and_job, self.job_id, self.position, ())
                for row in rows:
                    if len(self.events) == BUFFER:
                        self.floor = self.events[0].id
                    self.events.append(row)
                if rows:
                    self.position = rows[-1].id
                    self._tell()
                    continue
                if job is None or job.state.finished:
                    self.ended = Ended(state=job.state if job is not None else "deleted")
                    self._tell()
                    return
                await self.signals.wait_job(self.job_id, seen, wait)
        except Exception as error:  # the store is away: every follower hears of it
            self.failed = error
            self._tell()

    async def follow(
        self, after: int, kinds: set[str], wait: float
    ) -> AsyncGenerator[FeedItem, None]:
        """One follower's events: from the store while it is behind the buffer, then from
        the buffer."""

        def wanted(rows: list[StoredEvent]) -> list[StoredEvent]:
            return [row for row in rows if row.kind in kinds] if kinds else rows

        while True:
            if self.failed is not None:
                raise self.failed
            if self.floor is None or after < self.floor:  # behind the buffer: read alone
                rows, job = await self.store.read(_events_and_job, self.job_id, after, ())
                if rows:
                    after = rows[-1].id
                    if found := wanted(rows):
                        yield found
                    continue
                if job is None or job.state.finished:
                    yield Ended(state=job.state if job is not None else "deleted")
                    return
                if self.floor is None:
                    await self.news(wait)
                continue
            news = self._news  # taken before looking: no news between look and wait is lost
            rows = self.after(after)
            if rows:
                after = rows[-1].id
                if found := wanted(rows):
                    yield found
                continue
            if self.ended is not None:
                yield self.ended
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await news.wait()
            yield []

    def after(self, after: int) -> list[StoredEvent]:
        """The buffered events with ids above `after` (walking back from the newest)."""
        found = []
        for event in reversed(self.events):
            if event.id <= after:
                break
            found.append(event)
        found.reverse()
        return found


class JobFeeds:
    """The shared readers of the jobs followed on this hub."""

    def __init__(self, store: Store, signals: Signals) -> None:
        self._store = store
        self._signals = signals
        self._readers: dict[int, _SharedReader] = {}

    def __len__(self) -> int:
        return len(self._readers)

    def close(self) -> None:
        """Stop every reader (the hub is stopping; its followers are ending too)."""
        for reader in self._readers.values():
            if reader.task is not None:
                reader.task.cancel()
        self._readers.clear()

    async def follow(
        self, job_id: int, after: int, kinds: Sequence[str], *, wait: float
    ) -> AsyncGenerator[FeedItem, None]:
        """Yield the job's events after `after` (of `kinds`, all if empty) in batches as they
        are stored, an empty batch after each quiet `wait` seconds (a chance to send a
        keep-alive or notice a departed client), and `Ended` last."""
        reader = self._readers.get(job_id)
        if reader is None or reader.failed is not None or reader.ended is not None:
            reader = _SharedReader(self._store, self._signals, job_id)
            reader.task = asyncio.create_task(reader.run(wait), name=f"job-feed-{job_id}")
            self._readers[job_id] = reader
        reader.followers += 1
        try:
            async for item in reader.follow(after, set(kinds), wait):
                yield item
        finally:
            reader.followers -= 1
            if reader.followers == 0:
                if self._readers.get(job_id) is reader:
                    del self._readers[job_id]
                if reader.task is not None:
                    reader.task.cancel()


def _events_and_job(
    conn: Connection, job_id: int, after: int, kinds: Sequence[str]
) -> tuple[list[StoredEvent], JobRecord | None]:
    """The job, then its events: a job read as finished has its last events stored already
    (the other order could miss them if the job ended between the two reads)."""
    job = job_store.get_job(conn, job_id)
    return event_store.list_events(conn, job_id, after=after, limit=READ_LIMIT, kinds=kinds), job
