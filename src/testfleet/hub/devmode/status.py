"""The developer-mode status of a job, from what the store says."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from testfleet.protocol.states import RunState
from testfleet.store import devmode as devmode_store
from testfleet.store import jobs as job_store
from testfleet.store.devmode import DeveloperSession, OpenTask
from testfleet.store.job_tree import JobTree, load_job_tree
from testfleet.store.records import JobRecord


@dataclass(frozen=True)
class View:
    """What the status is made of, read in one transaction."""

    job: JobRecord | None
    session: DeveloperSession | None
    tree: JobTree | None
    open: list[OpenTask]


def read_view(conn: Connection, job_id: int) -> View:
    job = job_store.get_job(conn, job_id)
    if job is None:
        return View(None, None, None, [])
    return View(
        job,
        devmode_store.get_session(conn, job_id),
        load_job_tree(conn, job_id),
        devmode_store.open_tasks(conn, job_id),
    )


def build_status(
    job_id: int, view: View, is_local: Callable[[int], bool], server_id: str
) -> dict[str, Any]:
    """The developer-mode status of a job from what the store says."""
    session = view.session
    paused = [t for t in view.open if t.task.paused is not None]
    current = paused[0] if paused else (view.open[0] if view.open else None)
    step_names: dict[tuple[int, int], str] = {}
    running_step: dict[int, int] = {}
    test_names: dict[tuple[int, int], str] = {}
    if view.tree is not None:
        for step in view.tree.steps:
            step_names[(step.task_id, step.idx)] = step.name
            if step.state == RunState.RUNNING:
                running_step[step.task_id] = step.idx
        for test in view.tree.tests:
            test_names[(test.run, test.test_index)] = test.name
    full_name = None
    if current is not None:
        index = (
            current.task.paused_step
            if current.task.paused is not None
            else running_step.get(current.task.id)
        )
        test_name = test_names.get((current.task.run, current.task.test_index), "")
        if index is not None:
            full_name = f"{test_name}/{step_names.get((current.task.id, index), index)}"
    return {
        "job_id": job_id,
        "job_state": view.job.state if view.job is not None else "deleted",
        "current_test_full_name": full_name,
        "pause_test_name": session.pause_at if session is not None else None,
        "test_execution_paused": paused[0].task.paused if paused else 0,
        "pause_on_failure": session.pause_on_failure if session is not None else False,
        "pause_on_next_command": session.pause_on_next if session is not None else False,
        "developer_id": session.developer_id if session is not None else None,
        "developer_name": session.developer_name if session is not None else None,
        "developer_session_started_at": (
            session.started_at.isoformat() if session is not None else None
        ),
        "developer_session_tab_count": session.tab_count if session is not None else 0,
        "tasks": [
            {
                "task_id": t.task.id,
                "state": t.task.state,
                "device": t.task.device_name,
                "agent": t.agent_name,
                "agent_connected": (
                    is_local(t.task.agent_id)
                    if t.agent_hub == server_id or is_local(t.task.agent_id)
                    else t.agent_online
                ),
                "paused": t.task.paused,
                "paused_step": t.task.paused_step,
                "current_step": (
                    step_names.get((t.task.id, t.task.paused_step))
                    if t.task.paused_step is not None
                    else step_names.get((t.task.id, running_step.get(t.task.id, -1)))
                ),
            }
            for t in view.open
        ],
    }
