"""A job's events as they are stored: the one loop behind every live follower (the SSE form
of `GET /api/v1/jobs/{id}/events` and the live channel's `follow_job`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from testfleet.hub.signals import Signals
from testfleet.store import events as event_store
from testfleet.store import jobs as job_store
from testfleet.store.db import Store
from testfleet.store.records import JobRecord, StoredEvent


@dataclass(frozen=True)
class Ended:
    """The job has finished and every event of it was yielded (`state` "deleted": it is
    gone)."""

    state: str


FeedItem = list[StoredEvent] | Ended


async def job_feed(
    store: Store,
    signals: Signals,
    job_id: int,
    after: int,
    kinds: Sequence[str],
    *,
    wait: float,
) -> AsyncIterator[FeedItem]:
    """Yield the job's events after `after` in batches as they are stored, an empty batch
    after each quiet `wait` seconds (a chance to send a keep-alive or notice a departed
    client), and `Ended` last. A wake-up from `signals` ends a quiet wait at once."""
    while True:
        seen = signals.job_version(job_id)
        rows, job = await store.read(_events_and_job, job_id, after, kinds)
        if rows:
            after = rows[-1].id
            yield rows
        if job is None or (job.state.finished and not rows):
            yield Ended(state=job.state if job is not None else "deleted")
            return
        if rows:
            continue
        await signals.wait_job(job_id, seen, wait)
        yield []


def _events_and_job(
    conn: Connection, job_id: int, after: int, kinds: Sequence[str]
) -> tuple[list[StoredEvent], JobRecord | None]:
    """The job, then its events: a job read as finished has its last events stored already
    (the other order could miss them if the job ended between the two reads)."""
    job = job_store.get_job(conn, job_id)
    return event_store.list_events(conn, job_id, after=after, limit=1000, kinds=kinds), job
