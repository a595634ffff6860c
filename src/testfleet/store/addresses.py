"""Which hub must act on a notification, as SQL evaluated in the sending transaction
(`notify.notify(..., hub=...)`): NULL when the store knows no such hub, and the notification
then goes to every hub."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import ColumnElement, String, literal, select

from testfleet.store.tables import agents, developer_commands, jobs, tasks

Address = Callable[[int], ColumnElement[str | None]]
"""The hub that must act on a notification about row `row_id`."""


def agent_of_task(task_id: int) -> ColumnElement[str | None]:
    """The hub the task's agent is connected to: it sends RUN_TASK and STOP_TASK."""
    query = select(agents.c.hub).join(tasks, tasks.c.agent_id == agents.c.id)
    return query.where(tasks.c.id == task_id).scalar_subquery()


def runner_of_job(job_id: int) -> ColumnElement[str | None]:
    """The hub that runs the job (its lease's owner); NULL while no hub has claimed it."""
    return select(jobs.c.owner).where(jobs.c.id == job_id).scalar_subquery()


def agent_of_command(command_id: int) -> ColumnElement[str | None]:
    """The hub a developer command's agent is connected to."""
    query = select(agents.c.hub).join(
        developer_commands, developer_commands.c.agent_id == agents.c.id
    )
    return query.where(developer_commands.c.id == command_id).scalar_subquery()


def hub(server_id: str) -> Address:
    """A hub the sender names itself."""

    def named(_row_id: int) -> ColumnElement[str | None]:
        return literal(server_id, String)

    return named
