"""A hub in this process, for fast tests: a temporary SQLite store, the API through
`httpx.ASGITransport`, and fake agents that speak the real wire protocol over an in-memory
socket (JSON text frames, exactly what a WebSocket carries).

    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1", slots=2)
        agent.run_tasks()                      # pass every task it is given
        job_id = await hub.start(job)
        status = await hub.wait(job_id)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel
from starlette.websockets import WebSocketDisconnect

from testfleet.hub.app import create_app
from testfleet.hub.auth import Principal
from testfleet.hub.config import HubConfig
from testfleet.hub.runtime import Hub
from testfleet.protocol.api import JobStatus
from testfleet.protocol.states import RunState
from testfleet.protocol.version import WIRE_VERSION
from testfleet.protocol.wire import (
    HUB_MESSAGES,
    Ack,
    DeviceSpec,
    Error,
    Heartbeat,
    HubMessageModel,
    Initialized,
    LogChunk,
    Register,
    RunTask,
    StepFinished,
    StepStarted,
    TaskFinished,
    TaskStarted,
)

M = TypeVar("M", bound=BaseModel)
WAIT = 10.0  # the longest any single wait in these tests may take, in seconds

FAST = HubConfig(
    heartbeat_interval=0.2,
    agent_timeout=1.0,
    stop_grace=0.5,
    event_timeout=5.0,
    sse_keepalive=1.0,
)
"""Short timings for tests (the data directory is filled in by `running_hub`)."""


async def eventually(
    predicate: Callable[[], Any], what: str, within: float = WAIT, interval: float = 0.01
) -> Any:
    """Await `predicate()` (a value or an awaitable) until it is truthy; return it, or fail
    naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(interval)


class MemorySocket:
    """Both ends of an agent's (or a probe's) WebSocket in memory. The hub uses it as its
    `AgentSocket` (or `ProbeSocket`)."""

    def __init__(self) -> None:
        self.to_hub: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.to_agent: asyncio.Queue[str | None] = asyncio.Queue()
        self.close_code: int | None = None
        self.close_reason: str | None = None

    # ---- the hub's side ----------------------------------------------------------------------

    async def accept(self) -> None:
        """Nothing to negotiate in memory."""

    async def receive(self) -> dict[str, Any]:
        """The agent's next frame as an ASGI message (a disconnect once it has hung up)."""
        frame = await self.to_hub.get()
        if frame is None:
            return {"type": "websocket.disconnect", "code": 1000}
        key = "text" if isinstance(frame, str) else "bytes"
        return {"type": "websocket.receive", key: frame}

    async def receive_text(self) -> str:
        """The next text frame (a probe's socket); WebSocketDisconnect once hung up."""
        frame = await self.to_hub.get()
        if frame is None:
            raise WebSocketDisconnect(1000)
        if not isinstance(frame, str):
            raise RuntimeError("a binary frame where text was expected")
        return frame

    async def send_text(self, data: str) -> None:
        """A frame to the agent."""
        if self.close_code is not None:
            raise RuntimeError("the socket is closed")
        self.to_agent.put_nowait(data)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """The hub closes the connection."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
            self.to_agent.put_nowait(None)
            self.to_hub.put_nowait(None)


@dataclass(eq=False)
class FakeAgent:
    """An agent that speaks the wire protocol, driven by the test (or by `run_tasks`)."""

    hub: Hub
    name: str
    devices: list[DeviceSpec]
    labels: dict[str, str] = field(default_factory=dict)
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    socket: MemorySocket = field(default_factory=MemorySocket)
    seq: int = 0
    received: list[HubMessageModel] = field(default_factory=list)
    initialized: Initialized | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _heartbeat: asyncio.Task[None] | None = None
    _new: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(
        self, held_tasks: Sequence[int] = (), who: Principal | None = None
    ) -> Initialized:
        """Open a connection (with credential `who`, when the hub has auth) and register;
        returns the hub's INITIALIZED."""
        self.socket = MemorySocket()
        self.received.clear()
        self._tasks.append(asyncio.create_task(self.hub.sessions.serve(self.socket, who)))
        self._tasks.append(asyncio.create_task(self._receive()))
        self._heartbeat = asyncio.create_task(self._heartbeats())
        self._tasks.append(self._heartbeat)
        self.send(
            Register(
                name=self.name,
                instance_id=self.instance_id,
                version="test",
                wire_version=WIRE_VERSION,
                labels=self.labels,
                devices=self.devices,
                held_tasks=list(held_tasks),
            )
        )
        reply = await self.expect(Initialized, Error)
        if isinstance(reply, Error):
            raise AssertionError(f"registration refused: {reply.code}: {reply.message}")
        self.initialized = reply
        self.seq = max(self.seq, reply.last_seq)
        return reply

    def send(self, message: BaseModel) -> None:
        """Send one frame as it is."""
        self.socket.to_hub.put_nowait(message.model_dump_json())

    def send_raw(self, frame: str | bytes) -> None:
        """Send any frame: text, or bytes (a binary frame)."""
        self.socket.to_hub.put_nowait(frame)

    def event(self, message: M) -> M:
        """Number an event with this agent's next seq and send it; returns it."""
        self.seq += 1
        numbered = message.model_copy(update={"seq": self.seq})
        self.send(numbered)
        return numbered

    async def expect(self, *kinds: type[M], within: float = WAIT) -> M:
        """The next message received of one of `kinds` (earlier others are kept)."""
        deadline = time.monotonic() + within
        while True:
            for index, message in enumerate(self.received):
                if isinstance(message, kinds):
                    del self.received[index]
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                names = ", ".join(k.__name__ for k in kinds)
                raise AssertionError(f"{self.name}: no {names} within {within:g} s")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._new.wait()

    async def acked(self, seq: int | None = None) -> None:
        """Wait until the hub has acknowledged every event so far (or up to `seq`)."""
        target = self.seq if seq is None else seq
        while True:
            ack = await self.expect(Ack)
            if ack.seq >= target:
                return

    def finish(
        self,
        task: RunTask,
        state: RunState = RunState.PASSED,
        *,
        steps: int | None = None,
        output: str = "",
    ) -> None:
        """Report a task run through: started, each step (logging `output`), finished."""
        self.event(TaskStarted(seq=1, task_id=task.task_id))
        count = len(task.steps) if steps is None else steps
        for index in range(count):
            self.event(StepStarted(seq=1, task_id=task.task_id, step_index=index))
            if output:
                self.event(LogChunk(seq=1, task_id=task.task_id, step_index=index, text=output))
            last = index == count - 1
            step_state = state if last else RunState.PASSED
            self.event(
                StepFinished(seq=1, task_id=task.task_id, step_index=index, state=step_state)
            )
        self.event(TaskFinished(seq=1, task_id=task.task_id, state=state))

    def run_tasks(self, state: Callable[[RunTask], RunState] | RunState = RunState.PASSED) -> None:
        """From now on, run every task given in the background, ending it in `state`."""

        async def loop() -> None:
            while True:
                task = await self.expect(RunTask, within=3600)
                self.finish(task, state(task) if callable(state) else state)

        self._tasks.append(asyncio.create_task(loop()))

    def go_silent(self) -> None:
        """Stop sending heartbeats (the socket stays open)."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()

    async def disconnect(self) -> None:
        """Hang up (the hub sees the socket close)."""
        await self._stop_tasks(keep_serving=True)
        self.socket.to_hub.put_nowait(None)

    async def close(self) -> None:
        """Hang up and stop every background task."""
        self.socket.to_hub.put_nowait(None)
        await self._stop_tasks(keep_serving=False)

    async def _stop_tasks(self, *, keep_serving: bool) -> None:
        serving = self._tasks[0] if self._tasks and keep_serving else None
        for task in self._tasks:
            if task is not serving:
                task.cancel()
        await asyncio.gather(*(t for t in self._tasks if t is not serving), return_exceptions=True)
        self._tasks = [serving] if serving is not None else []

    async def _receive(self) -> None:
        while True:
            text = await self.socket.to_agent.get()
            if text is None:
                return
            self.received.append(HUB_MESSAGES.validate_json(text))
            self._new.set()

    async def _heartbeats(self) -> None:
        while True:
            self.send(Heartbeat())
            await asyncio.sleep(self.hub.config.heartbeat_interval / 2)


@dataclass
class RunningHub:
    """A hub running in this process, its API client, and its fake agents."""

    hub: Hub
    api: httpx.AsyncClient
    agents: list[FakeAgent] = field(default_factory=list)

    async def agent(
        self,
        name: str,
        *,
        slots: int = 1,
        labels: dict[str, str] | None = None,
        devices: Sequence[DeviceSpec] = (),
    ) -> FakeAgent:
        """Connect and register a fake agent with `slots` host slots (and `devices`)."""
        offered = [DeviceSpec(name=f"slot-{i}", kind="host") for i in range(slots)]
        agent = FakeAgent(self.hub, name, [*offered, *devices], labels=dict(labels or {}))
        await agent.connect()
        self.agents.append(agent)
        return agent

    async def start(self, descriptor: dict[str, Any]) -> int:
        """Start a job; returns its id."""
        response = await self.api.post("/api/v1/jobs", json=descriptor)
        assert response.status_code == 201, response.text
        return int(response.json()["job_id"])

    async def status(self, job_id: int) -> JobStatus:
        """A job's status."""
        response = await self.api.get(f"/api/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return JobStatus.model_validate_json(response.content)

    async def wait(self, job_id: int, within: float = WAIT) -> JobStatus:
        """The job's status once it has finished."""

        async def finished() -> JobStatus | None:
            status = await self.status(job_id)
            return status if status.state.finished else None

        result: JobStatus = await eventually(finished, f"job {job_id} to finish", within)
        return result


def one_test_job(name: str = "job", steps: int = 1, **test: Any) -> dict[str, Any]:
    """A job with one test of `steps` echo steps; `test` adds to the test's fields."""
    return {
        "name": name,
        "tests": [
            {
                "name": "t",
                "steps": [
                    {"name": f"s{i}", "plugin": "echo", "params": {"text": "hi"}}
                    for i in range(steps)
                ],
                **test,
            }
        ],
    }


@asynccontextmanager
async def running_hub(data_dir: Path, **settings: Any) -> AsyncIterator[RunningHub]:
    """Run a hub (SQLite in `data_dir`) in this process until the block ends; `settings`
    override `FAST`."""
    config = replace(FAST, data_dir=data_dir, **settings)
    app = create_app(config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as api:
            running = RunningHub(app.state.hub, api)
            try:
                yield running
            finally:
                for agent in running.agents:
                    await agent.close()
