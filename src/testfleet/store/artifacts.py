"""Artifacts: uploads announced (with the job's size limit checked in the same transaction),
completed, listed; and test cases are in `testcases.py`."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select, update

from testfleet.store.result_records import ArtifactRecord
from testfleet.store.tables import artifacts, tasks, test_cases

RECEIVING = "receiving"
COMPLETE = "complete"


class Refusal(enum.Enum):
    """Why an upload was not accepted."""

    UNKNOWN_TASK = "unknown_task"
    JOB_LIMIT = "job_limit"


@dataclass(frozen=True)
class Announced:
    """An upload announced: the artifact row (new, or the one already there), or a refusal."""

    artifact: ArtifactRecord | None = None
    refusal: Refusal | None = None
    job_total: int = 0
    replaced: bool = False
    """Another file was being uploaded at this path: its bytes must be dropped."""


def announce_upload(
    conn: Connection,
    *,
    task_id: int,
    step_index: int,
    path: str,
    size: int,
    sha256: str,
    job_limit: int,
    now: datetime,
) -> Announced:
    """The artifact for a file a task's agent will upload. The same file announced again
    (a resumed upload) gets the same row; a different file at the same path replaces it.
    Refused if the task is unknown or the job's files would pass `job_limit` bytes."""
    task = conn.execute(select(tasks.c.job_id).where(tasks.c.id == task_id)).first()
    if task is None:
        return Announced(refusal=Refusal.UNKNOWN_TASK)
    job_id = int(task.job_id)
    key = (artifacts.c.task_id == task_id, artifacts.c.step_index == step_index)
    existing = conn.execute(select(artifacts).where(*key, artifacts.c.path == path)).first()
    total = job_bytes(conn, job_id)
    if existing is not None:
        record = ArtifactRecord.from_row(existing)
        if record.sha256 == sha256 and record.size == size:
            return Announced(artifact=record)
        if total - record.size + size > job_limit:
            return Announced(refusal=Refusal.JOB_LIMIT, job_total=total - record.size)
        conn.execute(delete(test_cases).where(test_cases.c.artifact_id == record.id))
        row = conn.execute(
            update(artifacts)
            .where(artifacts.c.id == record.id)
            .values(
                size=size,
                sha256=sha256,
                state=RECEIVING,
                created_at=now,
                completed_at=None,
                report_cases=None,
                report_error=None,
            )
            .returning(*artifacts.c)
        ).one()
        return Announced(artifact=ArtifactRecord.from_row(row), replaced=True)
    if total + size > job_limit:
        return Announced(refusal=Refusal.JOB_LIMIT, job_total=total)
    row = conn.execute(
        insert(artifacts)
        .values(
            job_id=job_id,
            task_id=task_id,
            step_index=step_index,
            path=path,
            size=size,
            sha256=sha256,
            state=RECEIVING,
            created_at=now,
        )
        .returning(*artifacts.c)
    ).one()
    return Announced(artifact=ArtifactRecord.from_row(row))


def job_bytes(conn: Connection, job_id: int) -> int:
    """The bytes a job's artifacts take or will take (uploads under way count)."""
    total = conn.execute(
        select(func.coalesce(func.sum(artifacts.c.size), 0)).where(artifacts.c.job_id == job_id)
    ).scalar_one()
    return int(total)


def get_artifact(conn: Connection, artifact_id: int) -> ArtifactRecord | None:
    """One artifact, with its device's name."""
    row = conn.execute(
        select(artifacts, tasks.c.device_name)
        .join(tasks, tasks.c.id == artifacts.c.task_id)
        .where(artifacts.c.id == artifact_id)
    ).first()
    return ArtifactRecord.from_row(row) if row is not None else None


def complete_artifact(conn: Connection, artifact_id: int, now: datetime) -> bool:
    """The upload arrived whole and checked: list it. False if it is gone (job deleted)."""
    result = conn.execute(
        update(artifacts)
        .where(artifacts.c.id == artifact_id, artifacts.c.state == RECEIVING)
        .values(state=COMPLETE, completed_at=now)
    )
    return bool(result.rowcount)


def note_report(conn: Connection, artifact_id: int, cases: int | None, error: str | None) -> None:
    """What reading the artifact as a test report gave."""
    conn.execute(
        update(artifacts)
        .where(artifacts.c.id == artifact_id)
        .values(report_cases=cases, report_error=error)
    )


def list_artifacts(conn: Connection, job_id: int) -> list[ArtifactRecord]:
    """A job's complete artifacts, by task then path."""
    rows = conn.execute(
        select(artifacts, tasks.c.device_name)
        .join(tasks, tasks.c.id == artifacts.c.task_id)
        .where(artifacts.c.job_id == job_id, artifacts.c.state == COMPLETE)
        .order_by(artifacts.c.task_id, artifacts.c.step_index, artifacts.c.path)
    )
    return [ArtifactRecord.from_row(row) for row in rows]


def report_errors(conn: Connection, job_id: int) -> list[tuple[str, str]]:
    """(path, problem) of a job's artifacts that could not be read as test reports."""
    rows = conn.execute(
        select(artifacts.c.path, artifacts.c.report_error)
        .where(artifacts.c.job_id == job_id, artifacts.c.report_error.is_not(None))
        .order_by(artifacts.c.id)
        .limit(100)
    )
    return [(row.path, row.report_error) for row in rows]


def stale_uploads(conn: Connection, before: datetime, limit: int = 500) -> list[ArtifactRecord]:
    """Uploads started before `before` and never finished (their agent died)."""
    rows = conn.execute(
        select(artifacts)
        .where(artifacts.c.state == RECEIVING, artifacts.c.created_at < before)
        .order_by(artifacts.c.id)
        .limit(limit)
    )
    return [ArtifactRecord.from_row(row) for row in rows]


def drop_artifacts(conn: Connection, artifact_ids: Sequence[int]) -> None:
    """Forget artifacts (their files are gone)."""
    if artifact_ids:
        conn.execute(delete(artifacts).where(artifacts.c.id.in_(list(artifact_ids))))
