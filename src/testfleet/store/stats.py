"""Counts and time series of the lab for the overview: each one aggregate query.

The series are grouped in the database (by time bucket and final state), so their cost
follows the number of buckets, not of jobs; `ix_jobs_ended_at` bounds the rows read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Float, Integer, cast, func, literal, select

from testfleet.protocol.states import FINISHED_JOB_STATES
from testfleet.store.tables import agents, devices, jobs
from testfleet.store.types import UTCDateTime


def count_by(conn: Connection, column: Any, *where: Any) -> dict[str, int]:
    """Rows per value of `column` (a state), among rows matching `where`."""
    query = select(column, func.count()).group_by(column)
    for condition in where:
        query = query.where(condition)
    return {str(value): int(count) for value, count in conn.execute(query)}


def agent_states(conn: Connection) -> dict[str, int]:
    """Agents per state."""
    return count_by(conn, agents.c.state)


def device_states(conn: Connection) -> dict[str, int]:
    """Devices (not removed) per state."""
    return count_by(conn, devices.c.state, devices.c.removed.is_(False))


def job_states(conn: Connection, states: Sequence[str]) -> dict[str, int]:
    """Jobs per state, among `states` (each counted through `ix_jobs_state_id`)."""
    return count_by(conn, jobs.c.state, jobs.c.state.in_(list(states)))


def finished_since(conn: Connection, since: datetime) -> dict[str, int]:
    """Jobs that finished at or after `since`, per final state."""
    return count_by(
        conn, jobs.c.state, jobs.c.ended_at >= since, jobs.c.state.in_(FINISHED_JOB_STATES)
    )


@dataclass(frozen=True)
class Bucket:
    """Jobs that ended in one time bucket in one final state."""

    index: int
    state: str
    count: int
    ran: int
    """Of `count`, the jobs that started (have a run time)."""
    mean_seconds: float | None
    max_seconds: float | None


def _seconds_between(conn: Connection, start: Any, end: Any) -> Any:
    """SQL for the seconds from `start` to `end` (datetime columns or values)."""
    if conn.dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def finished_series(
    conn: Connection, since: datetime, bucket_seconds: int, buckets: int
) -> list[Bucket]:
    """Jobs that ended from `since` on, per bucket of `bucket_seconds` and final state: how
    many, and their mean and longest run time (start to end; jobs that never started count
    but have no run time)."""
    offset = cast(_seconds_between(conn, literal(since, UTCDateTime()), jobs.c.ended_at), Float)
    if conn.dialect.name == "postgresql":
        index = func.floor(offset / bucket_seconds).label("bucket")
    else:  # offsets are never negative here: truncation is the floor (SQLite may lack floor)
        index = cast(offset / bucket_seconds, Integer).label("bucket")
    duration = _seconds_between(conn, jobs.c.started_at, jobs.c.ended_at)
    query = (
        select(
            index,
            jobs.c.state,
            func.count(),
            func.count(jobs.c.started_at),
            func.avg(duration),
            func.max(duration),
        )
        .where(jobs.c.ended_at >= since, jobs.c.state.in_(FINISHED_JOB_STATES))
        .group_by(index, jobs.c.state)
    )
    found = []
    for bucket, state, count, ran, mean, longest in conn.execute(query):
        position = int(bucket)
        if 0 <= position < buckets:
            found.append(
                Bucket(
                    index=position,
                    state=str(state),
                    count=int(count),
                    ran=int(ran),
                    mean_seconds=float(mean) if mean is not None else None,
                    max_seconds=float(longest) if longest is not None else None,
                )
            )
    return found
