"""Watch a job until it ends: a Rich Live view on a terminal, plain event lines otherwise."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from testfleet.cli.output import print_line
from testfleet.cli.render import event_line, job_tree
from testfleet.client import AsyncClient, AsyncEventStream
from testfleet.protocol.api import EventRecord, JobStatus

REFRESH = 0.5
"""Seconds between status refreshes while events arrive."""

FINAL_WAIT = 30.0
"""How long to wait for the status to show a final state after the stream ended."""

LOG_LINES = 10


@dataclass
class LiveState:
    """What the live view shows: the last status and the last log lines."""

    status: JobStatus
    dirty: bool = False
    log: deque[tuple[int | None, str, str]] = field(default_factory=lambda: deque(maxlen=LOG_LINES))

    def take(self, event: EventRecord) -> None:
        """Note an event: log lines are kept, anything else asks for a new status."""
        if event.kind != "log":
            self.dirty = True
            return
        stream = str(event.data.get("stream", ""))
        for line in str(event.data.get("text", "")).rstrip("\n").split("\n"):
            self.log.append((event.task_id, stream, line))


def render_live(state: LiveState) -> RenderableType:
    """The job tree and, below it, the latest log lines."""
    if not state.log:
        return job_tree(state.status)
    lines = Text()
    for task_id, stream, line in state.log:
        lines.append(f"task {task_id} " if task_id is not None else "", style="dim")
        lines.append(f"{stream}: " if stream else "", style="red" if stream == "stderr" else "dim")
        lines.append(line + "\n")
    lines.rstrip()
    return Group(job_tree(state.status), Panel(lines, title="log", title_align="left"))


async def watch(client: AsyncClient, job_id: int, console: Console) -> JobStatus:
    """Follow the job until it has ended and return its final status."""
    if console.is_terminal:
        return await _watch_live(client, job_id, console)
    async with client.follow(job_id) as events:
        async for event in events:
            print_line(event_line(event))
    return await final_status(client, job_id)


async def _watch_live(client: AsyncClient, job_id: int, console: Console) -> JobStatus:
    state = LiveState(await client.status(job_id))
    with Live(render_live(state), console=console, refresh_per_second=4) as live:
        pump = asyncio.create_task(_pump(client.follow(job_id), state))
        try:
            while not pump.done():
                await asyncio.wait({pump}, timeout=REFRESH)
                if state.dirty:
                    state.dirty = False
                    state.status = await client.status(job_id)
                live.update(render_live(state))
            pump.result()
            state.status = await final_status(client, job_id)
            live.update(render_live(state), refresh=True)
        finally:
            if not pump.done():
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
    return state.status


async def _pump(events: AsyncEventStream, state: LiveState) -> None:
    async with events:
        async for event in events:
            state.take(event)


async def final_status(client: AsyncClient, job_id: int) -> JobStatus:
    """The status once it shows a final state (the stream may end a moment before)."""
    status = await client.status(job_id)
    if status.state.finished:
        return status
    return await client.wait(job_id, timeout=FINAL_WAIT, interval=0.2)
