"""Build the status documents of the job API from store rows."""

from __future__ import annotations

from collections import defaultdict

from testfleet.protocol.api import (
    EventRecord,
    JobStatus,
    JobSummary,
    ReporterResult,
    RunStatus,
    StepStatus,
    TaskStatus,
    TestStatus,
)
from testfleet.store.job_tree import JobTree
from testfleet.store.records import JobRecord, StoredEvent


def build_summary(job: JobRecord) -> JobSummary:
    """A job as List shows it."""
    return JobSummary(
        job_id=job.id,
        name=job.name,
        state=job.state,
        requestor=job.requestor,
        tags=list(job.tags),
        created_at=job.created_at,
        started_at=job.started_at,
        ended_at=job.ended_at,
        retried_from=job.retried_from,
        error=job.error,
    )


def build_status(tree: JobTree, server_id: str) -> JobStatus:
    """The full status of a job: runs -> tests -> tasks -> steps, with reporters' results."""
    steps_of: defaultdict[int, list[StepStatus]] = defaultdict(list)
    for step in tree.steps:
        steps_of[step.task_id].append(
            StepStatus(
                index=step.idx,
                name=step.name,
                plugin=step.plugin,
                state=step.state,
                exit_code=step.exit_code,
                started_at=step.started_at,
                ended_at=step.ended_at,
                error=step.error,
            )
        )
    tasks_of: defaultdict[tuple[int, int], list[TaskStatus]] = defaultdict(list)
    for task in tree.tasks:
        tasks_of[(task.run, task.test_index)].append(
            TaskStatus(
                task_id=task.id,
                device_id=task.device_id,
                device_name=task.device_name,
                agent=task.agent_name or str(task.agent_id),
                state=task.state,
                attempt=task.attempt,
                started_at=task.started_at,
                ended_at=task.ended_at,
                error=task.error,
                paused=task.paused,
                paused_step=task.paused_step,
                steps=steps_of[task.id],
            )
        )
    tests_of: defaultdict[int, list[TestStatus]] = defaultdict(list)
    for test in tree.tests:
        tests_of[test.run].append(
            TestStatus(
                index=test.test_index,
                name=test.name,
                state=test.state,
                attempts=test.attempts,
                started_at=test.started_at,
                ended_at=test.ended_at,
                error=test.error,
                waiting=test.waiting,
                tasks=tasks_of[(test.run, test.test_index)],
            )
        )
    runs = [
        RunStatus(
            number=run.number,
            state=run.state,
            started_at=run.started_at,
            ended_at=run.ended_at,
            tests=tests_of[run.number],
            reporters=[ReporterResult.model_validate(r) for r in run.reporters or []],
        )
        for run in tree.runs
    ]
    job = tree.job
    return JobStatus(
        **build_summary(job).model_dump(),
        server_id=server_id,
        runs_requested=job.runs_requested,
        runs=runs,
        final_reporters=[ReporterResult.model_validate(r) for r in job.final_reporters or []],
        descriptor=job.descriptor,
    )


def build_event(row: StoredEvent) -> EventRecord:
    """An event as the API shows it."""
    return EventRecord(
        id=row.id,
        kind=row.kind,
        job_id=row.job_id,
        task_id=row.task_id,
        at=row.at,
        data=row.data,
        agent=row.agent_name,
    )
