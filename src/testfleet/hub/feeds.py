"""Followed jobs: one reader per job hands each new event to all of the job's followers.

However many clients follow a job (live views, browsers, `job start --follow`), its new events
are read from the store once per change and encoded once; each follower only filters them and
writes them out. A follower catches up on the job's history itself, then takes the feed,
skipping what it has sent already.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

from sqlalchemy import Connection

from testfleet.hub.signals import Signals
from testfleet.protocol.api import EventRecord
from testfleet.store import events as event_store
from testfleet.store import jobs as job_store
from testfleet.store.db import Store
from testfleet.store.records import JobRecord, StoredEvent

_log = logging.getLogger(__name__)
POLL = 1.0  # seconds between looks when no change is signalled (the job may run elsewhere)
PAGE = 1000
FOLLOWER_BACKLOG = 256
"""Batches a follower may fall behind before it is dropped (its client reconnects and
catches up from the store)."""


@dataclass(frozen=True)
class Frame:
    """One event as a server-sent event, encoded once for every follower."""

    id: int
    kind: str
    text: str


def event_record(row: StoredEvent) -> EventRecord:
    """A stored event as the API shows it."""
    return EventRecord(
        id=row.id,
        kind=row.kind,
        job_id=row.job_id,
        task_id=row.task_id,
        at=row.at,
        data=row.data,
        agent=row.agent_name,
    )


def encode(row: StoredEvent) -> Frame:
    """A stored event as a server-sent event."""
    record = event_record(row)
    text = f"id: {record.id}\nevent: {record.kind}\ndata: {record.model_dump_json()}\n\n"
    return Frame(record.id, record.kind, text)


Batch = list[Frame] | str
"""New events, or the job's final state once it has finished (the feed ends)."""


@dataclass(eq=False)
class _Feed:
    job_id: int
    cursor: int
    followers: set[asyncio.Queue[Batch]] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class JobFeeds:
    """The feeds of the jobs followed through this hub."""

    def __init__(self, store: Store, signals: Signals) -> None:
        self._store = store
        self._signals = signals
        self._feeds: dict[int, _Feed] = {}

    @contextlib.asynccontextmanager
    async def subscribe(self, job_id: int) -> AsyncIterator[asyncio.Queue[Batch]]:
        """A queue of the job's events stored from now on, for as long as the block runs."""
        feed = self._feeds.get(job_id)
        if feed is None:
            cursor = await self._store.read(event_store.last_event_id, job_id)
            feed = self._feeds.get(job_id)  # another follower may have started it meanwhile
            if feed is None:
                feed = self._feeds[job_id] = _Feed(job_id, cursor)
                feed.task = asyncio.create_task(self._run(feed), name=f"feed-{job_id}")
        queue: asyncio.Queue[Batch] = asyncio.Queue(FOLLOWER_BACKLOG)
        feed.followers.add(queue)
        try:
            yield queue
        finally:
            feed.followers.discard(queue)
            if not feed.followers and self._feeds.get(job_id) is feed:
                del self._feeds[job_id]
                if feed.task is not None:
                    feed.task.cancel()

    async def _run(self, feed: _Feed) -> None:
        while True:
            seen = self._signals.job_version(feed.job_id)
            try:
                rows, job = await self._store.read(_events_and_job, feed.job_id, feed.cursor)
            except Exception:  # the store is away: look again shortly
                _log.warning("cannot read events of job %d", feed.job_id, exc_info=True)
                await asyncio.sleep(POLL)
                continue
            if rows:
                feed.cursor = rows[-1].id
                self._hand_out(feed, [encode(row) for row in rows])
                if len(rows) == PAGE:
                    continue
            if job is None or job.state.finished:
                self._hand_out(feed, str(job.state) if job is not None else "deleted")
                if self._feeds.get(feed.job_id) is feed:
                    del self._feeds[feed.job_id]
                return
            await self._signals.wait_job(feed.job_id, seen, POLL)

    def _hand_out(self, feed: _Feed, batch: Batch) -> None:
        for queue in list(feed.followers):
            try:
                queue.put_nowait(batch)
            except asyncio.QueueFull:  # too far behind: let it go and catch up on its own
                feed.followers.discard(queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.get_nowait()
                    queue.put_nowait("lagging")


def history(
    conn: Connection, job_id: int, after: int, kinds: list[str]
) -> tuple[list[StoredEvent], JobRecord | None]:
    """A page of the job's events after `after`, and the job read before them."""
    return _events_and_job(conn, job_id, after, kinds)


def _events_and_job(
    conn: Connection, job_id: int, after: int, kinds: list[str] | None = None
) -> tuple[list[StoredEvent], JobRecord | None]:
    """The job, then its events: a job read as finished has its last events stored already
    (the other order could miss them if the job ended between the two reads)."""
    job = job_store.get_job(conn, job_id)
    rows = event_store.list_events(conn, job_id, after=after, limit=PAGE, kinds=kinds or ())
    return rows, job


def selected(frames: list[Frame], kinds: frozenset[str], after: int) -> Iterator[Frame]:
    """The frames a follower sends: of its kinds, and newer than what it has sent."""
    for frame in frames:
        if frame.id > after and (not kinds or frame.kind in kinds):
            yield frame
