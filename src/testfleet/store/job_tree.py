"""A job with everything its status is made of: runs, tests, tasks and steps."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from testfleet.store.jobs import get_job
from testfleet.store.records import JobRecord, RunRecord, StepRecord, TaskRecord, TestRecord
from testfleet.store.tables import agents, job_runs, job_tests, steps, tasks


@dataclass(frozen=True)
class JobTree:
    """Everything the status of one job is made of."""

    job: JobRecord
    runs: list[RunRecord]
    tests: list[TestRecord]
    tasks: list[TaskRecord]
    steps: list[StepRecord]


def load_job_tree(conn: Connection, job_id: int) -> JobTree | None:
    """The job with its runs, tests, tasks (with agent names) and steps."""
    job = get_job(conn, job_id)
    if job is None:
        return None
    runs = conn.execute(
        select(job_runs).where(job_runs.c.job_id == job_id).order_by(job_runs.c.number)
    )
    tests = conn.execute(
        select(job_tests)
        .where(job_tests.c.job_id == job_id)
        .order_by(job_tests.c.run, job_tests.c.test_index)
    )
    task_rows = conn.execute(
        select(tasks, agents.c.name.label("agent_name"))
        .join(agents, agents.c.id == tasks.c.agent_id)
        .where(tasks.c.job_id == job_id)
        .order_by(tasks.c.id)
    )
    step_rows = conn.execute(
        select(steps)
        .join(tasks, tasks.c.id == steps.c.task_id)
        .where(tasks.c.job_id == job_id)
        .order_by(steps.c.task_id, steps.c.idx)
    )
    return JobTree(
        job=job,
        runs=[RunRecord.from_row(row) for row in runs],
        tests=[TestRecord.from_row(row) for row in tests],
        tasks=[TaskRecord.from_row(row) for row in task_rows],
        steps=[StepRecord.from_row(row) for row in step_rows],
    )
