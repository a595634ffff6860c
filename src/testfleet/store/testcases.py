"""Test cases read from reports: stored in bulk, counted per job, listed failed first, and
followed across jobs by name."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, insert, select

from testfleet.store.result_records import TestCaseRecord
from testfleet.store.tables import test_cases

OUTCOMES = ("passed", "failed", "error", "skipped")
_RANK = case(
    (test_cases.c.outcome == "failed", 0),
    (test_cases.c.outcome == "error", 0),
    (test_cases.c.outcome == "skipped", 1),
    else_=2,
)


def insert_cases(
    conn: Connection,
    *,
    job_id: int,
    job_name: str,
    artifact_id: int,
    task_id: int,
    cases: Sequence[dict[str, Any]],
    now: datetime,
) -> int:
    """Store a report's cases (dicts with suite, classname, name, outcome, duration, message,
    detail) in one statement; returns how many."""
    if cases:
        common = {
            "job_id": job_id,
            "job_name": job_name,
            "artifact_id": artifact_id,
            "task_id": task_id,
            "at": now,
        }
        conn.execute(insert(test_cases), [{**common, **item} for item in cases])
    return len(cases)


def outcome_counts(conn: Connection, job_id: int) -> dict[str, int]:
    """How many of a job's cases ended each way."""
    rows = conn.execute(
        select(test_cases.c.outcome, func.count())
        .where(test_cases.c.job_id == job_id)
        .group_by(test_cases.c.outcome)
    )
    return {str(outcome): int(count) for outcome, count in rows}


def list_job_cases(
    conn: Connection,
    job_id: int,
    *,
    outcomes: Sequence[str] = (),
    offset: int = 0,
    limit: int = 100,
) -> list[TestCaseRecord]:
    """A job's cases: failed and errored first, then skipped, then passed; in report order."""
    query = (
        select(test_cases)
        .where(test_cases.c.job_id == job_id)
        .order_by(_RANK, test_cases.c.id)
        .offset(offset)
        .limit(limit)
    )
    if outcomes:
        query = query.where(test_cases.c.outcome.in_(list(outcomes)))
    return [TestCaseRecord.from_row(row) for row in conn.execute(query)]


def case_history(
    conn: Connection,
    name: str,
    *,
    classname: str | None = None,
    job_name: str | None = None,
    limit: int = 1000,
) -> list[TestCaseRecord]:
    """The newest `limit` cases called `name` (or `classname.name`), across jobs."""
    query = (
        select(test_cases)
        .where(test_cases.c.name == name)
        .order_by(test_cases.c.id.desc())
        .limit(limit)
    )
    if classname is not None:
        query = query.where(test_cases.c.classname == classname)
    if job_name is not None:
        query = query.where(test_cases.c.job_name == job_name)
    rows = [TestCaseRecord.from_row(row) for row in conn.execute(query)]
    if rows or classname is not None:
        return rows
    for separator in ("::", "."):  # a qualified name: classname and name
        if separator in name:
            left, right = name.rsplit(separator, 1)
            found = case_history(conn, right, classname=left, job_name=job_name, limit=limit)
            if found:
                return found
    return []
