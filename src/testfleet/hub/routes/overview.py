"""`GET /api/v1/overview`: the lab at a glance, one transaction of aggregate queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import Connection

from testfleet.hub.routes.deps import HubDep, Reader
from testfleet.protocol.lab import Overview, ThroughputBucket
from testfleet.protocol.states import FINISHED_JOB_STATES, JobState
from testfleet.protocol.wire import utcnow
from testfleet.store import stats

router = APIRouter(prefix="/api/v1", tags=["overview"])
ACTIVE_STATES = [s for s in JobState if s not in FINISHED_JOB_STATES]


@dataclass(frozen=True)
class _Counts:
    agents: dict[str, int]
    devices: dict[str, int]
    jobs: dict[str, int]
    last_hour: dict[str, int]
    series: list[stats.Bucket]


def _read(conn: Connection, now: datetime, since: datetime, bucket: int, buckets: int) -> _Counts:
    return _Counts(
        agents=stats.agent_states(conn),
        devices=stats.device_states(conn),
        jobs=stats.job_states(conn, ACTIVE_STATES),
        last_hour=stats.finished_since(conn, now - timedelta(hours=1)),
        series=stats.finished_series(conn, since, bucket, buckets),
    )


@router.get("/overview", response_model=Overview, summary="Counts and throughput of the lab")
async def overview(
    hub: HubDep,
    _: Reader,
    hours: Annotated[int, Query(ge=1, le=24 * 31, description="The series' window")] = 24,
    buckets: Annotated[int, Query(ge=1, le=200, description="Points in the series")] = 24,
) -> Overview:
    now = utcnow()
    bucket_seconds = max(1, hours * 3600 // buckets)
    since = now - timedelta(seconds=bucket_seconds * buckets)
    counts = await hub.store.read(_read, now, since, bucket_seconds, buckets)
    series = [
        ThroughputBucket(start=since + timedelta(seconds=bucket_seconds * i))
        for i in range(buckets)
    ]
    _fill(series, counts.series)
    return Overview(
        server_id=hub.server_id,
        at=now,
        agents={state: counts.agents.get(state, 0) for state in ("online", "offline")},
        devices={state: counts.devices.get(state, 0) for state in ("free", "busy", "offline")},
        jobs={str(state): counts.jobs.get(state, 0) for state in ACTIVE_STATES},
        finished_last_hour={str(s): counts.last_hour.get(s, 0) for s in _FINISHED},
        bucket_seconds=bucket_seconds,
        throughput=series,
    )


_FINISHED = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


def _fill(series: list[ThroughputBucket], found: list[stats.Bucket]) -> None:
    """Put the per-state buckets into the series: counts per outcome, and the mean and
    longest run time over all outcomes (weighted by the jobs that ran)."""
    seconds = [0.0] * len(series)
    ran = [0] * len(series)
    for bucket in found:
        point = series[bucket.index]
        setattr(point, bucket.state, getattr(point, bucket.state) + bucket.count)
        if bucket.mean_seconds is not None and bucket.ran:
            seconds[bucket.index] += bucket.mean_seconds * bucket.ran
            ran[bucket.index] += bucket.ran
            point.max_seconds = max(point.max_seconds or 0.0, bucket.max_seconds or 0.0)
    for index, point in enumerate(series):
        if ran[index]:
            point.mean_seconds = seconds[index] / ran[index]
