"""Developer mode in the store: one developer per running job, the pause state of its tasks,
and commands relayed to the hub an agent is connected to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, insert, select, update

from testfleet.protocol.states import FINISHED_JOB_STATES, AgentState, JobState, RunState
from testfleet.store import jobs as job_store
from testfleet.store.events import add_events, event_row
from testfleet.store.records import JobRecord, Record, TaskRecord
from testfleet.store.tables import agents, developer_commands, developer_sessions, jobs, tasks

_OPEN = (RunState.PENDING, RunState.RUNNING)


@dataclass(frozen=True, slots=True)
class DeveloperSession(Record):
    """Who holds a job in developer mode, with their flags."""

    job_id: int
    developer_id: int | None
    developer_name: str
    started_at: datetime
    tab_count: int
    seen_at: datetime
    pause_at: str | None
    pause_on_failure: bool
    pause_on_next: bool


@dataclass(frozen=True)
class Attached:
    """A tab joined the session (`created`: it started it)."""

    session: DeveloperSession
    created: bool


@dataclass(frozen=True)
class Held:
    """Someone else holds the job."""

    session: DeveloperSession


@dataclass(frozen=True)
class NotRunning:
    """The job is not running (or unknown: `job` None)."""

    job: JobRecord | None


def get_session(conn: Connection, job_id: int) -> DeveloperSession | None:
    """The job's developer session, if any."""
    row = conn.execute(
        select(developer_sessions).where(developer_sessions.c.job_id == job_id)
    ).first()
    return DeveloperSession.from_row(row) if row is not None else None


def attach(
    conn: Connection, job_id: int, name: str, developer_id: int | None, now: datetime
) -> Attached | Held | NotRunning:
    """A tab of `name` joins the job's session (starting it if there is none); refused when
    another developer holds it or the job is not running."""
    job = job_store.get_job(conn, job_id)
    if job is None or job.state.finished or job.state == JobState.QUEUED:
        return NotRunning(job)
    if conn.dialect.name == "postgresql":
        conn.execute(select(jobs.c.id).where(jobs.c.id == job_id).with_for_update(key_share=True))
    current = get_session(conn, job_id)
    if current is None:
        conn.execute(
            insert(developer_sessions).values(
                job_id=job_id,
                developer_id=developer_id,
                developer_name=name,
                started_at=now,
                tab_count=1,
                seen_at=now,
                pause_at=None,
                pause_on_failure=False,
                pause_on_next=False,
            )
        )
        add_events(
            conn, [event_row("developer_session_started", now, job_id=job_id, data={"by": name})]
        )
        session = get_session(conn, job_id)
        assert session is not None
        return Attached(session, created=True)
    if current.developer_name != name:
        return Held(current)
    conn.execute(
        update(developer_sessions)
        .where(developer_sessions.c.job_id == job_id)
        .values(tab_count=developer_sessions.c.tab_count + 1, seen_at=now)
    )
    session = get_session(conn, job_id)
    assert session is not None
    return Attached(session, created=False)


def detach(conn: Connection, job_id: int, name: str, now: datetime) -> DeveloperSession | None:
    """A tab of `name` closed: the session stays (with one tab fewer)."""
    conn.execute(
        update(developer_sessions)
        .where(
            developer_sessions.c.job_id == job_id,
            developer_sessions.c.developer_name == name,
            developer_sessions.c.tab_count > 0,
        )
        .values(tab_count=developer_sessions.c.tab_count - 1, seen_at=now)
    )
    return get_session(conn, job_id)


def touch(conn: Connection, job_ids: list[int], now: datetime) -> None:
    """Tabs of these jobs' developers are open on this hub."""
    if job_ids:
        conn.execute(
            update(developer_sessions)
            .where(developer_sessions.c.job_id.in_(job_ids))
            .values(seen_at=now)
        )


def set_flags(
    conn: Connection,
    job_id: int,
    name: str,
    *,
    pause_at: str | None,
    pause_on_failure: bool,
    pause_on_next: bool,
) -> DeveloperSession | None:
    """Change the session's pause flags (None: `name` does not hold the job)."""
    result = conn.execute(
        update(developer_sessions)
        .where(developer_sessions.c.job_id == job_id, developer_sessions.c.developer_name == name)
        .values(pause_at=pause_at, pause_on_failure=pause_on_failure, pause_on_next=pause_on_next)
    )
    return get_session(conn, job_id) if result.rowcount else None


def end_session(
    conn: Connection, job_id: int, why: str, now: datetime, name: str | None = None
) -> DeveloperSession | None:
    """End the job's session (only `name`'s, when given); returns the ended session."""
    session = get_session(conn, job_id)
    if session is None or (name is not None and session.developer_name != name):
        return None
    result = conn.execute(
        delete(developer_sessions).where(
            developer_sessions.c.job_id == job_id,
            developer_sessions.c.developer_name == session.developer_name,
        )
    )
    if not result.rowcount:
        return None
    add_events(
        conn,
        [
            event_row(
                "developer_session_ended",
                now,
                job_id=job_id,
                data={"by": session.developer_name, "why": why},
            )
        ],
    )
    return session


def stale_sessions(conn: Connection, seen_before: datetime, limit: int = 100) -> list[int]:
    """Jobs whose developer has had no tab open since `seen_before`, or whose job ended."""
    finished = exists().where(
        and_(jobs.c.id == developer_sessions.c.job_id, jobs.c.state.in_(FINISHED_JOB_STATES))
    )
    rows = conn.execute(
        select(developer_sessions.c.job_id)
        .where((developer_sessions.c.seen_at < seen_before) | finished)
        .order_by(developer_sessions.c.job_id)
        .limit(limit)
    )
    return [row.job_id for row in rows]


def record_event(
    conn: Connection, job_id: int, kind: str, now: datetime, data: dict[str, Any]
) -> None:
    """A developer-mode event of the job (a command run, a resume asked ...)."""
    add_events(conn, [event_row(kind, now, job_id=job_id, data=data)])


@dataclass(frozen=True)
class OpenTask:
    """An unfinished task of a job, where it runs, and whether its agent is online."""

    task: TaskRecord
    agent_name: str
    agent_online: bool
    agent_hub: str | None


def open_tasks(conn: Connection, job_id: int) -> list[OpenTask]:
    """The job's unfinished tasks with their agents."""
    rows = conn.execute(
        select(
            tasks,
            agents.c.name.label("agent_name"),
            agents.c.state.label("agent_state"),
            agents.c.hub.label("agent_hub"),
        )
        .join(agents, agents.c.id == tasks.c.agent_id)
        .where(tasks.c.job_id == job_id, tasks.c.state.in_(_OPEN))
        .order_by(tasks.c.id)
    ).all()
    found = []
    for row in rows:
        values = dict(row._mapping)
        online = values.pop("agent_state") == AgentState.ONLINE
        hub = values.pop("agent_hub")
        values["state"] = RunState(values["state"])
        found.append(OpenTask(TaskRecord(**values), row.agent_name, online, hub))
    return found


def any_session(conn: Connection) -> bool:
    """Whether any developer session exists (most of the time none does)."""
    return bool(conn.execute(select(exists().select_from(developer_sessions))).scalar())


def sessions_of_agent(conn: Connection, agent_id: int) -> list[DeveloperSession]:
    """Developer sessions of the jobs with unfinished tasks on `agent_id`."""
    held = (
        select(tasks.c.job_id)
        .where(tasks.c.agent_id == agent_id, tasks.c.state.in_(_OPEN))
        .scalar_subquery()
    )
    rows = conn.execute(select(developer_sessions).where(developer_sessions.c.job_id.in_(held)))
    return [DeveloperSession.from_row(row) for row in rows]


# ---- the tasks' pause state (from the agents' events) -------------------------------------------


def mark_paused(conn: Connection, task_id: int, reason: str, step: int) -> None:
    """The agent paused a task."""
    conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.state.in_(_OPEN))
        .values(paused=reason, paused_step=step)
    )


def mark_resumed(conn: Connection, task_id: int) -> bool:
    """The agent resumed a task (or it ended); True if it was paused."""
    result = conn.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.paused.is_not(None))
        .values(paused=None, paused_step=None)
    )
    return bool(result.rowcount)


def settle_job_state(conn: Connection, job_id: int) -> None:
    """`paused` while any unfinished task of the job is paused, `running` again after."""
    any_paused = conn.execute(
        select(tasks.c.id)
        .where(tasks.c.job_id == job_id, tasks.c.paused.is_not(None), tasks.c.state.in_(_OPEN))
        .limit(1)
    ).first()
    if any_paused is not None:
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.state == JobState.RUNNING)
            .values(state=JobState.PAUSED)
        )
    else:
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.state == JobState.PAUSED)
            .values(state=JobState.RUNNING)
        )


# ---- commands for agents on other hubs ---------------------------------------------------------


def add_command(
    conn: Connection, job_id: int, agent_id: int, message: dict[str, Any], now: datetime
) -> int:
    """Keep a command for the hub of `agent_id` (it is notified with the returned id)."""
    result = conn.execute(
        insert(developer_commands).values(
            job_id=job_id, agent_id=agent_id, message=message, created_at=now
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def command_agent(conn: Connection, command_id: int) -> int | None:
    """The agent a kept command is for (None: taken already)."""
    row = conn.execute(
        select(developer_commands.c.agent_id).where(developer_commands.c.id == command_id)
    ).first()
    return int(row.agent_id) if row is not None else None


def take_command(conn: Connection, command_id: int) -> tuple[int, dict[str, Any]] | None:
    """The command's agent and message, deleted from the store (None: taken already)."""
    row = conn.execute(
        select(developer_commands.c.agent_id, developer_commands.c.message).where(
            developer_commands.c.id == command_id
        )
    ).first()
    if row is None:
        return None
    result = conn.execute(delete(developer_commands).where(developer_commands.c.id == command_id))
    return (int(row.agent_id), dict(row.message)) if result.rowcount else None


def forget_old_commands(conn: Connection, before: datetime) -> int:
    """Drop commands no hub took (their agent was nowhere) since `before`."""
    result = conn.execute(
        delete(developer_commands).where(developer_commands.c.created_at < before)
    )
    return int(result.rowcount or 0)
