"""Developer mode on the hub: who holds which job, the pause flags, commands to the agents,
the status the developer sees, and the release of jobs whose developer is gone.

The store is the truth (the session row, the tasks' pause state from the agents' events), so
a developer's tabs on different hubs see one session, and a hub restart loses nothing but
its open sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection

from testfleet.hub.auth import Principal
from testfleet.hub.devmode.link import DevLink
from testfleet.hub.devmode.status import build_status, read_view
from testfleet.protocol.wire import utcnow
from testfleet.protocol.wire_dev import (
    DevList,
    DevResume,
    DevRun,
    DevScreenshot,
    DevSet,
    PauseFlags,
)
from testfleet.store import devmode as devmode_store
from testfleet.store import events as event_store
from testfleet.store.db import Store
from testfleet.store.devmode import DeveloperSession, OpenTask

_log = logging.getLogger(__name__)
COMMAND_TIMEOUT = 60.0
"""Seconds a developer's command may run on the agent."""
COMMAND_OUTPUT = 256 * 1024
"""Characters of output a developer's command may print."""
LOG_LINES = 200
"""Log lines the developer gets at most in one `log` answer."""
OLD_COMMANDS = timedelta(minutes=10)

StopJob = Callable[[int, str], Awaitable[Any]]


def flags_of(session: DeveloperSession | None) -> PauseFlags:
    """The pause flags a session asks for (none without a session)."""
    if session is None:
        return PauseFlags()
    return PauseFlags(
        pause_at=session.pause_at,
        pause_on_failure=session.pause_on_failure,
        pause_on_next=session.pause_on_next,
    )


class DeveloperMode:
    """The hub's side of developer mode."""

    def __init__(
        self,
        *,
        server_id: str,
        store: Store,
        link: DevLink,
        stop_job: StopJob,
        timeout: float,
    ) -> None:
        self._server_id = server_id
        self._store = store
        self._link = link
        self._stop_job = stop_job
        self.timeout = timeout
        self._tabs: Counter[int] = Counter()
        """Open tabs on this hub per job (they keep their sessions alive)."""
        self._any = SessionsExist(store)

    # ---- the session --------------------------------------------------------------------------

    async def attach(
        self, job_id: int, who: Principal
    ) -> devmode_store.Attached | devmode_store.Held | devmode_store.NotRunning:
        """A tab of `who` joins (or starts) the job's session."""
        result = await self._store.write(
            devmode_store.attach, job_id, who.name, who.token_id, utcnow()
        )
        if isinstance(result, devmode_store.Attached):
            self._tabs[job_id] += 1
            self._any.now_true()
        return result

    async def detach(self, job_id: int, who: Principal) -> None:
        """A tab closed; the session stays."""
        self._tabs[job_id] -= 1
        if self._tabs[job_id] <= 0:
            del self._tabs[job_id]
        await self._store.write(devmode_store.detach, job_id, who.name, utcnow())

    async def set_flags(
        self, job_id: int, who: Principal, **changes: Any
    ) -> DeveloperSession | None:
        """Change some pause flags (None: `who` does not hold the job) and tell the agents."""
        session = await self._store.read(devmode_store.get_session, job_id)
        if session is None or session.developer_name != who.name:
            return None
        flags = flags_of(session).model_copy(update=changes)
        updated = await self._store.write(
            devmode_store.set_flags,
            job_id,
            who.name,
            pause_at=flags.pause_at,
            pause_on_failure=flags.pause_on_failure,
            pause_on_next=flags.pause_on_next,
        )
        if updated is not None:
            await self._to_agents(job_id, DevSet(job_id=job_id, flags=flags_of(updated)))
        return updated

    async def resume(self, job_id: int, who: Principal, *, ignore_failure: bool) -> int:
        """Resume the job's paused tasks; returns how many were paused (0: nothing done)."""
        opened = await self._store.read(devmode_store.open_tasks, job_id)
        paused = [t for t in opened if t.task.paused is not None]
        if not paused:
            return 0
        await self._store.write(
            devmode_store.record_event,
            job_id,
            "developer_resumed",
            utcnow(),
            {
                "by": who.name,
                "ignore_failure": ignore_failure,
                "tasks": [t.task.id for t in paused],
            },
        )
        message = DevResume(job_id=job_id, by=who.name, ignore_failure=ignore_failure)
        for agent_id in sorted({t.task.agent_id for t in paused}):
            await self._link.send(job_id, agent_id, message)
        return len(paused)

    async def quit(self, job_id: int, who: Principal, *, cancel_job: bool) -> bool:
        """End `who`'s session: the job runs on (or is cancelled). False: not theirs."""
        ended = await self._store.write(
            devmode_store.end_session,
            job_id,
            "cancelled the job" if cancel_job else "quit",
            utcnow(),
            who.name,
        )
        if ended is None:
            return False
        self._tabs.pop(job_id, None)
        if cancel_job:
            with contextlib.suppress(Exception):  # it may have ended meanwhile
                await self._stop_job(job_id, who.name)
        await self._release(job_id, who.name)
        return True

    async def job_ended(self, job_id: int, state: str) -> None:
        """The job has finished: its session (if any) ends with it."""
        self._tabs.pop(job_id, None)
        await self._store.write(
            devmode_store.end_session, job_id, f"the job ended ({state})", utcnow()
        )

    async def _release(self, job_id: int, by: str) -> None:
        """No developer any more: flags off, paused tasks go on."""
        await self._to_agents(job_id, DevSet(job_id=job_id, flags=PauseFlags()))
        await self._to_agents(job_id, DevResume(job_id=job_id, by=by))

    async def _to_agents(self, job_id: int, message: DevSet | DevResume) -> None:
        opened = await self._store.read(devmode_store.open_tasks, job_id)
        for agent_id in sorted({t.task.agent_id for t in opened}):
            if not await self._link.send(job_id, agent_id, message):
                _log.info("job %d: agent %d is not connected; it is told later", job_id, agent_id)

    # ---- looking around -------------------------------------------------------------------------

    async def paused_task(self, job_id: int, task_id: int | None) -> OpenTask | str:
        """The paused task to look at (`task_id`, or the first paused one), or why there is
        none."""
        opened = await self._store.read(devmode_store.open_tasks, job_id)
        for candidate in opened:
            if task_id is None or candidate.task.id == task_id:
                if candidate.task.paused is None:
                    if task_id is None:
                        continue
                    return f"task {task_id} is not paused"
                return candidate
        if task_id is not None:
            return f"task {task_id} is not an unfinished task of job {job_id}"
        return "no task of the job is paused"

    async def list_directory(self, job_id: int, task: OpenTask) -> str:
        """Ask the agent for the task's working directory; returns the request id."""
        request_id = uuid.uuid4().hex[:16]
        await self._link.send(
            job_id, task.task.agent_id, DevList(task_id=task.task.id, request_id=request_id)
        )
        return request_id

    async def screenshot(self, job_id: int, task: OpenTask) -> str:
        """Ask the agent for the screen of the task's device; returns the request id."""
        request_id = uuid.uuid4().hex[:16]
        message = DevScreenshot(task_id=task.task.id, request_id=request_id)
        await self._link.send(job_id, task.task.agent_id, message)
        return request_id

    async def run_command(self, job_id: int, who: Principal, task: OpenTask, command: str) -> str:
        """Run `command` in the task's directory (recorded with who ran it); returns its id."""
        command_id = uuid.uuid4().hex[:16]
        await self._store.write(
            devmode_store.record_event,
            job_id,
            "developer_command",
            utcnow(),
            {
                "by": who.name,
                "task_id": task.task.id,
                "command_id": command_id,
                "command": command,
            },
        )
        message = DevRun(
            task_id=task.task.id,
            command_id=command_id,
            command=command,
            by=who.name,
            timeout=COMMAND_TIMEOUT,
            max_output=COMMAND_OUTPUT,
        )
        await self._link.send(job_id, task.task.agent_id, message)
        return command_id

    async def last_log(self, job_id: int, task_id: int, lines: int) -> list[str]:
        """The task's last log lines (at most `lines`, at most LOG_LINES)."""
        lines = max(1, min(lines, LOG_LINES))
        rows = await self._store.read(partial_list_events, job_id, task_id, lines)
        text = "".join(str(row.data.get("text", "")) for row in rows)
        return text.splitlines()[-lines:]

    async def last_event_id(self, job_id: int) -> int:
        """The id of the job's newest event (a channel follows from there)."""
        return await self._store.read(event_store.last_event_id, job_id)

    # ---- status ---------------------------------------------------------------------------------

    async def status(self, job_id: int) -> dict[str, Any]:
        """The status a developer sees (openQA's fields, adapted to steps)."""
        view = await self._store.read(read_view, job_id)
        return build_status(job_id, view, self._link.is_local, self._server_id)

    # ---- for the rest of the hub ----------------------------------------------------------------

    async def flags_for(self, job_id: int) -> PauseFlags | None:
        """The flags to give a new task of the job (None: no developer). Read only when any
        developer session exists: most tasks of most labs have none."""
        if not await self._any.check():
            return None
        session = await self._store.read(devmode_store.get_session, job_id)
        return flags_of(session) if session is not None else None

    async def agent_registered(self, agent_id: int, name: str) -> None:
        """An agent (re)connected here: give it the flags of its jobs' sessions, and tell
        their developers (an event: every hub's channels hear of it)."""
        if not await self._any.check():  # a reconnecting fleet: one read, not one an agent
            return
        sessions = await self._store.read(devmode_store.sessions_of_agent, agent_id)
        for session in sessions:
            message = DevSet(job_id=session.job_id, flags=flags_of(session))
            await self._link.send(session.job_id, agent_id, message)
            await self._store.write(
                devmode_store.record_event,
                session.job_id,
                "developer_agent_reconnected",
                utcnow(),
                {"agent": name},
            )

    async def agent_dropped(self, agent_id: int, name: str) -> None:
        """An agent's connection here ended: tell the developers of its jobs."""
        if not await self._any.check():
            return
        sessions = await self._store.read(devmode_store.sessions_of_agent, agent_id)
        for session in sessions:
            await self._store.write(
                devmode_store.record_event,
                session.job_id,
                "developer_agent_disconnected",
                utcnow(),
                {"agent": name},
            )

    async def run(self) -> None:
        """Keep this hub's developers' sessions alive; end those whose developer is gone (no
        tab anywhere for the timeout) or whose job ended."""
        tick = min(5.0, self.timeout / 3)
        while True:
            try:
                await self.sweep()
            except Exception:
                _log.exception("developer sessions: sweep failed; trying again")
            await asyncio.sleep(tick)

    async def sweep(self) -> list[int]:
        """One look; returns the jobs whose sessions ended."""
        now = utcnow()
        await self._store.write(devmode_store.touch, list(self._tabs), now)
        stale = await self._store.read(
            devmode_store.stale_sessions, now - timedelta(seconds=self.timeout)
        )
        ended = []
        for job_id in stale:
            session = await self._store.write(
                devmode_store.end_session, job_id, "the developer is gone or the job ended", now
            )
            if session is None:
                continue
            ended.append(job_id)
            self._tabs.pop(job_id, None)
            _log.info("job %d: developer session of %s ended", job_id, session.developer_name)
            await self._release(job_id, "developer timeout")
        await self._store.write(devmode_store.forget_old_commands, now - OLD_COMMANDS)
        return ended


def partial_list_events(conn: Connection, job_id: int, task_id: int, lines: int) -> list[Any]:
    """The task's newest log events (enough for `lines` lines, as a rule)."""
    return event_store.list_events(
        conn, job_id, kinds=("log",), task_id=task_id, last=True, limit=lines
    )


class SessionsExist:
    """Whether any developer session exists, read at most every `FRESH_FOR` seconds and by one
    caller at a time (the others wait for its answer): a fleet of agents reconnecting at once
    costs a read a second, not one an agent. A session attached on this hub counts at once. One
    attached on another hub counts within FRESH_FOR s: an agent that reconnects in that second,
    and so also missed the flags sent at the attach, gets them when the developer next sets
    one."""

    FRESH_FOR = 1.0

    def __init__(self, store: Store) -> None:
        self._store = store
        self._known: tuple[float, bool] | None = None
        self._reading: asyncio.Lock = asyncio.Lock()

    def now_true(self) -> None:
        """A session was attached here."""
        self._known = (time.monotonic(), True)

    async def check(self) -> bool:
        """Whether any session exists (as of at most FRESH_FOR s ago)."""
        async with self._reading:
            known = self._known
            if known is None or time.monotonic() - known[0] > self.FRESH_FOR:
                exists = await self._store.read(devmode_store.any_session)
                known = self._known = (time.monotonic(), exists)
            return known[1]
