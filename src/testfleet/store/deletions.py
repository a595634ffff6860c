"""Deleting jobs: hidden at once (`job_deletions`), their rows and files removed in the
background in small transactions, so a job with a million events never blocks the store."""

from __future__ import annotations

from sqlalchemy import Connection, exists, select

from testfleet.store.jobs import get_job
from testfleet.store.records import JobRecord
from testfleet.store.tables import job_deletions


def is_deleted(conn: Connection, job_id: int) -> bool:
    """True once someone asked to delete the job."""
    return bool(conn.execute(select(exists().where(job_deletions.c.job_id == job_id))).scalar())


def visible_job(conn: Connection, job_id: int) -> JobRecord | None:
    """The job, unless it does not exist or is being deleted."""
    job = get_job(conn, job_id)
    if job is None or is_deleted(conn, job_id):
        return None
    return job
