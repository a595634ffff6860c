"""A run's end: the instances that never reported an outcome fail (or are canceled, when the
run was terminated) with the reason where one is known (their agent was lost, its task ended
early), and the outcomes are counted per instance identity: a run is a success only when
every group is fully ok."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection

from testfleet.hub.jobs.service import JobService
from testfleet.hub.sync.service import SyncService
from testfleet.protocol.plan_api import InstanceState, TaskState
from testfleet.protocol.states import JobState, RunState
from testfleet.protocol.wire import utcnow
from testfleet.store import jobs as job_store
from testfleet.store import plan_runs, plan_tasks
from testfleet.store.db import Store
from testfleet.store.plan_records import PlanTaskRecord

_log = logging.getLogger(__name__)


async def finalize(store: Store, jobs: JobService, sync: SyncService, task: PlanTaskRecord) -> None:
    """End a run whose job has ended: unreported instances fail (or are canceled), the
    outcomes are counted, the sync state is forgotten."""
    job = await store.read(job_store.get_job, task.job_id) if task.job_id else None
    canceled = job is not None and job.state == JobState.CANCELLED
    reasons = await _agent_reasons(jobs, task.job_id) if task.job_id else {}
    now = utcnow()

    def work(conn: Connection) -> dict[str, Any]:
        for agent, reason in reasons.items():
            plan_runs.fail_agent_instances(conn, task.id, agent, reason, now)
        if canceled:
            plan_runs.fail_unreported(
                conn, task.id, InstanceState.CANCELED, "the run was terminated", now
            )
        else:
            plan_runs.fail_unreported(
                conn, task.id, InstanceState.FAILURE, "never reported an outcome", now
            )
        counts = plan_runs.outcome_counts(conn, task.id)
        outcomes = {group: {"ok": ok, "total": total} for group, (ok, total) in counts.items()}
        success = bool(counts) and all(ok == total for ok, total in counts.values())
        outcome = "canceled" if canceled else "success" if success else "failure"
        result = {"outcome": outcome, "outcomes": outcomes}
        state = TaskState.CANCELED if canceled else TaskState.COMPLETE
        error = None if success or canceled else (job.error if job is not None else None)
        plan_tasks.move_task(conn, task.id, state, now, result=result, error=error)
        return result

    await store.write(work)
    try:
        await sync.forget(task.id)
    except Exception:
        _log.exception("cannot forget the sync state of run %s", task.id)


async def _agent_reasons(jobs: JobService, job_id: int) -> dict[str, str]:
    """Why each agent's share ended without outcomes, for the agents whose task did not
    end normally (lost, timed out, cancelled)."""
    try:
        status = await jobs.status(job_id)
    except Exception:
        return {}
    reasons: dict[str, str] = {}
    for run in status.runs:
        for test in run.tests:
            for task in test.tasks:
                if task.state in (RunState.INCOMPLETE, RunState.CANCELLED, RunState.FAILED):
                    what = (
                        "was lost" if task.state == RunState.INCOMPLETE else f"ended {task.state}"
                    )
                    reasons[task.agent] = (
                        f"its agent's task {what}: {task.error or 'no reason given'}"
                    )
    return reasons
