"""Agent connections: registration, events in, commands out, and noticing lost agents."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection
from starlette.websockets import WebSocket, WebSocketDisconnect

from testfleet.hub.errors import json_pointer
from testfleet.hub.ingest import AgentEventMessage, apply_events
from testfleet.hub.task_ends import end_tasks
from testfleet.protocol.states import RunState
from testfleet.protocol.version import WIRE_VERSION
from testfleet.protocol.wire import (
    AGENT_MESSAGE_TYPES,
    AGENT_MESSAGES,
    Ack,
    Error,
    Heartbeat,
    Initialized,
    Register,
    StopTask,
    utcnow,
)
from testfleet.store import inventory
from testfleet.store import jobs as job_store
from testfleet.store.events import add_events, event_row

if TYPE_CHECKING:
    from testfleet.hub.runtime import Hub

_log = logging.getLogger(__name__)
REGISTER_TIMEOUT = 10.0
MAX_BATCH = 500
MAX_FRAME = 4 * 1024 * 1024


@dataclass(eq=False)
class AgentConnection:
    """One live WebSocket of one agent on this hub."""

    agent_id: int
    name: str
    instance_id: str
    websocket: WebSocket
    last_seen: float = field(default_factory=time.monotonic)
    outbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    inbox: asyncio.Queue[AgentEventMessage] = field(default_factory=asyncio.Queue)
    closed: bool = False
    last_seq: int = 0
    last_seq_read: bool = False  # read from the store with the first events (it may have moved)

    def send(self, message: BaseModel) -> None:
        """Queue a message for the agent (sent in order by the writer task)."""
        if not self.closed:
            self.outbox.put_nowait(message.model_dump_json())


class AgentRegistry:
    """The agents connected to this hub, and the watch for lost ones."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.connections: dict[int, AgentConnection] = {}
        self._disconnected_at: dict[int, float] = {}
        self._lost_reason: dict[int, str] = {}

    def send(self, agent_id: int, message: BaseModel) -> bool:
        """Send to an agent connected here; False if it is not (it is reconciled on return)."""
        connection = self.connections.get(agent_id)
        if connection is None or connection.closed:
            return False
        connection.send(message)
        return True

    # ---- one connection ------------------------------------------------------------------

    async def serve(self, websocket: WebSocket) -> None:
        """Run one agent connection from REGISTER to close."""
        await websocket.accept()
        try:
            register = await self._receive_register(websocket)
        except WebSocketDisconnect:
            return
        if register is None:
            with contextlib.suppress(Exception):
                await websocket.close(code=1008)
            return
        connection = await self._register(websocket, register)
        if connection is None:
            with contextlib.suppress(Exception):
                await websocket.close(code=1008)
            return
        writer = asyncio.create_task(self._write(connection), name=f"agent-{connection.name}-w")
        processor = asyncio.create_task(
            self._process(connection), name=f"agent-{connection.name}-p"
        )
        try:
            await self._read(connection)
        finally:
            connection.closed = True
            if self.connections.get(connection.agent_id) is connection:
                del self.connections[connection.agent_id]
                self._disconnected_at[connection.agent_id] = time.monotonic()
            processor.cancel()
            writer.cancel()
            await asyncio.gather(processor, writer, return_exceptions=True)
            self.hub.metrics.agents_connected.set(len(self.connections))
            _log.info("agent %s disconnected", connection.name)

    async def _receive_register(self, websocket: WebSocket) -> Register | None:
        try:
            async with asyncio.timeout(REGISTER_TIMEOUT):
                text = await websocket.receive_text()
        except TimeoutError:
            await self._send_error(
                websocket,
                "register_timeout",
                f"no REGISTER within {REGISTER_TIMEOUT:g} s",
                fatal=True,
            )
            return None
        message = await self._parse(websocket, text)
        if message is None:
            return None
        if not isinstance(message, Register):
            await self._send_error(
                websocket,
                "not_registered",
                f"the first message must be REGISTER, got {message.type}",
                fatal=True,
            )
            return None
        if message.wire_version != WIRE_VERSION:
            await self._send_error(
                websocket,
                "unsupported_wire_version",
                f"agent speaks wire version {message.wire_version}; this hub speaks {WIRE_VERSION}",
                fatal=True,
            )
            return None
        return message

    async def _register(self, websocket: WebSocket, register: Register) -> AgentConnection | None:
        existing = next((c for c in self.connections.values() if c.name == register.name), None)
        if existing is not None:
            if existing.instance_id != register.instance_id:
                await self._send_error(
                    websocket,
                    "name_in_use",
                    f"an agent named {register.name!r} is already connected (another process); "
                    "give this one another --name",
                    fatal=True,
                )
                return None
            existing.closed = True  # the same process reconnected; the old socket is stale
            with contextlib.suppress(Exception):
                await existing.websocket.close(code=1012)
        now = utcnow()
        offered = [
            inventory.DeviceRow(
                id=inventory.device_id(register.name, d.name),
                agent_id=0,
                name=d.name,
                kind=d.kind,
                capabilities=d.capabilities,
                labels={**register.labels, **d.labels},
            )
            for d in register.devices
        ]
        row, resend, lost, stale = await self.hub.store.write(
            _register_agent, register, offered, self.hub.server_id, now
        )
        connection = AgentConnection(
            agent_id=row.id,
            name=register.name,
            instance_id=register.instance_id,
            websocket=websocket,
            last_seq=row.last_seq,
        )
        self.connections[row.id] = connection
        self._disconnected_at.pop(row.id, None)
        self.hub.metrics.agents_connected.set(len(self.connections))
        connection.send(
            Initialized(
                agent_id=row.id,
                server_id=self.hub.server_id,
                last_seq=row.last_seq,
                heartbeat_interval=self.hub.config.heartbeat_interval,
            )
        )
        for task in resend:
            await self.hub.jobs.dispatch(task.id)
        for task_id in stale:
            connection.send(StopTask(task_id=task_id, reason="the hub has already ended it"))
        for task in lost:
            await self.hub.relay.job_changed(task.job_id)
        self.hub.signals.devices_changed()
        _log.info(
            "agent %s registered with %d device(s), %d held task(s)",
            register.name,
            len(register.devices),
            len(register.held_tasks),
        )
        return connection

    async def _read(self, connection: AgentConnection) -> None:
        websocket = connection.websocket
        while True:
            try:
                text = await websocket.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                return
            connection.last_seen = time.monotonic()
            message = await self._parse(websocket, text)
            if message is None or isinstance(message, Heartbeat):
                continue
            if isinstance(message, Register):
                connection.send(
                    Error(
                        code="already_registered",
                        message="REGISTER is only valid as the first message",
                    )
                )
                continue
            connection.inbox.put_nowait(message)

    async def _process(self, connection: AgentConnection) -> None:
        """Apply events in batches, one transaction each, then acknowledge them."""
        while True:
            batch = [await connection.inbox.get()]
            while len(batch) < MAX_BATCH and not connection.inbox.empty():
                batch.append(connection.inbox.get_nowait())
            try:
                applied = await self.hub.store.write(
                    apply_events,
                    self.hub.task_index,
                    connection.agent_id,
                    connection.name,
                    connection.last_seq if connection.last_seq_read else None,
                    batch,
                    utcnow(),
                )
            except Exception as error:  # the agent keeps them and sends them again
                _log.exception("cannot store events of agent %s", connection.name)
                connection.send(
                    Error(
                        code="store_error",
                        fatal=True,
                        message=f"events not stored ({error}); reconnect and send them again",
                    )
                )
                await asyncio.sleep(0.5)
                await connection.websocket.close(code=1011)
                return
            connection.last_seq = applied.highest_seq
            connection.last_seq_read = True
            self.hub.metrics.events_stored.inc(applied.stored)
            connection.send(Ack(seq=applied.highest_seq))
            await asyncio.gather(*(self.hub.relay.job_changed(j) for j in applied.jobs))
            if applied.devices_changed:
                self.hub.signals.devices_changed()
            for task_id in applied.unknown_tasks:
                connection.send(
                    Error(code="unknown_task", message=f"task {task_id} is unknown to this hub")
                )

    async def _write(self, connection: AgentConnection) -> None:
        while True:
            text = await connection.outbox.get()
            try:
                await connection.websocket.send_text(text)
            except Exception:
                return

    async def _parse(self, websocket: WebSocket, text: str) -> Any | None:
        """A validated message, or None after answering ERROR (the connection goes on)."""
        if len(text) > MAX_FRAME:
            await self._send_error(
                websocket, "too_large", f"a message may be at most {MAX_FRAME} bytes"
            )
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            await self._send_error(
                websocket, "malformed_message", f"not JSON: {error.msg} at column {error.colno}"
            )
            return None
        kind = data.get("type") if isinstance(data, dict) else None
        if kind not in AGENT_MESSAGE_TYPES:
            await self._send_error(
                websocket,
                "unknown_message",
                f"unknown message type {kind!r}; known: {', '.join(AGENT_MESSAGE_TYPES)}",
                location="/type",
            )
            return None
        try:
            return AGENT_MESSAGES.validate_python(data)
        except ValidationError as error:
            first = error.errors()[0]
            location = json_pointer(first["loc"][1:])
            await self._send_error(
                websocket,
                "malformed_message",
                f"{kind}: {location or '/'}: {first['msg']}",
                location=location,
            )
            return None

    async def _send_error(
        self,
        websocket: WebSocket,
        code: str,
        message: str,
        *,
        location: str | None = None,
        fatal: bool = False,
    ) -> None:
        _log.warning("agent message refused: %s: %s", code, message)
        self.hub.metrics.agent_errors.inc()
        with contextlib.suppress(Exception):
            await websocket.send_text(
                Error(code=code, message=message, location=location, fatal=fatal).model_dump_json()
            )

    # ---- liveness --------------------------------------------------------------------------

    async def watch(self) -> None:
        """Notice lost agents: no heartbeat, a dropped socket not re-made, or a dead hub's."""
        tick = min(0.5, self.hub.config.heartbeat_interval / 2)
        last_store_check = 0.0
        while True:
            await asyncio.sleep(tick)
            try:
                last_store_check = await self._watch_once(last_store_check)
            except Exception:  # the store is away, say: the next pass tries again
                _log.exception("watching agents failed; trying again")

    async def _watch_once(self, last_store_check: float) -> float:
        """One look at the agents; returns when the store was last checked."""
        config = self.hub.config
        now = time.monotonic()
        for agent_id, connection in list(self.connections.items()):
            silent = now - connection.last_seen
            if silent > config.agent_timeout:
                connection.closed = True
                self.connections.pop(agent_id, None)
                with contextlib.suppress(Exception):
                    await connection.websocket.close(code=1001)
                await self.mark_lost(
                    agent_id, f"no heartbeat for {silent:.1f} s", _wall_ago(silent)
                )
        for agent_id, since in list(self._disconnected_at.items()):
            if now - since > config.agent_timeout:
                del self._disconnected_at[agent_id]
                await self.mark_lost(
                    agent_id,
                    f"connection closed and not re-made within {config.agent_timeout:g} s",
                    _wall_ago(now - since),
                )
        if now - last_store_check >= config.agent_timeout / 2:
            last_store_check = now
            await self._sync_with_store()
        return last_store_check

    async def _sync_with_store(self) -> None:
        """Write when local agents were last heard of; mark stale agents of any hub lost."""
        wall = utcnow()
        seen = [agent_id for agent_id, c in self.connections.items() if not c.closed]
        cutoff = wall - timedelta(seconds=self.hub.config.agent_timeout * 2)

        def work(conn: Connection) -> Sequence[Any]:
            inventory.touch_agents(conn, seen, wall)
            return inventory.stale_agents(conn, cutoff)

        stale = [row for row in await self.hub.store.write(work) if row.id not in self.connections]
        for row in stale:
            since = row.last_seen.isoformat() if row.last_seen else "ever"
            await self.mark_lost(row.id, f"not heard from since {since}", row.last_seen or wall)

    async def mark_lost(self, agent_id: int, reason: str, heard_until: datetime) -> None:
        """The agent is gone: offline with its devices; its open tasks end incomplete.

        `heard_until` is when this hub last knew it alive: an agent that registered again
        since (here or with another hub) is not lost.
        """
        if agent_id in self.connections:
            return  # it came back in the meantime
        now = utcnow()
        heard_after = now - timedelta(seconds=self.hub.config.agent_timeout * 2)
        lost = await self.hub.store.write(
            _lose_agent, agent_id, reason, now, self.hub.server_id, heard_after, heard_until
        )
        if lost is None:
            _log.info("agent %d is connected again (here or to another hub)", agent_id)
            return
        full_reason, task_rows = lost
        _log.warning("%s (%d open task(s) incomplete)", full_reason, len(task_rows))
        for job_id in {task.job_id for task in task_rows}:
            await self.hub.relay.job_changed(job_id)

    async def close_all(self) -> None:
        """Close every connection (on shutdown): agents reconnect to the next hub."""
        for connection in list(self.connections.values()):
            connection.closed = True
            with contextlib.suppress(Exception):
                await connection.websocket.close(code=1012)


def _wall_ago(seconds: float) -> datetime:
    """The wall-clock time `seconds` ago."""
    return utcnow() - timedelta(seconds=seconds)


def _register_agent(
    conn: Connection,
    register: Register,
    offered: list[inventory.DeviceRow],
    hub: str,
    now: datetime,
) -> tuple[Any, list[Any], list[Any], list[int]]:
    """Record the agent and its devices, and reconcile its tasks with what it holds.

    Returns the agent row, pending tasks to send again, running tasks it lost (now
    incomplete), and held tasks the hub has ended (to stop on the agent).
    """
    row = inventory.register_agent(
        conn,
        name=register.name,
        instance_id=register.instance_id,
        version=register.version,
        labels=register.labels,
        hub=hub,
        now=now,
    )
    inventory.sync_devices(conn, row.id, register.name, offered)
    held = set(register.held_tasks)
    resend: list[Any] = []
    lost: list[Any] = []
    for task in job_store.unfinished_tasks_of_agent(conn, row.id):
        if task.id in held:
            continue
        (resend if task.state == RunState.PENDING else lost).append(task)
    reason = f"agent {register.name!r} no longer runs this task (it restarted)"
    end_tasks(conn, [(t.id, t.job_id) for t in lost], RunState.INCOMPLETE, reason, now)
    known = {t.id: t for t in job_store.get_tasks(conn, sorted(held))}
    stale = [
        task_id
        for task_id in held
        if task_id not in known or RunState(known[task_id].state).finished
    ]
    return row, resend, lost, stale


def _lose_agent(
    conn: Connection,
    agent_id: int,
    reason: str,
    now: datetime,
    hub: str,
    heard_after: datetime,
    heard_until: datetime,
) -> tuple[str, Sequence[Any]] | None:
    """Mark the agent and its devices offline and its open tasks incomplete.

    Changes nothing (None) if the agent registered again after `heard_until`, or is
    connected to another hub that heard from it after `heard_after`.
    """
    agent = inventory.get_agent(conn, agent_id, lock=True)
    if agent is not None:
        if agent.connected_at is not None and agent.connected_at > heard_until:
            return None
        moved = agent.hub != hub and agent.last_seen is not None
        if moved and agent.last_seen >= heard_after:
            return None
    name = agent.name if agent is not None else str(agent_id)
    reason = f"agent {name!r} lost: {reason}"
    inventory.set_agent_offline(conn, agent_id)
    open_tasks = job_store.unfinished_tasks_of_agent(conn, agent_id)
    end_tasks(conn, [(t.id, t.job_id) for t in open_tasks], RunState.INCOMPLETE, reason, now)
    add_events(
        conn,
        [
            event_row(
                "agent_lost",
                now,
                data={"agent": name, "reason": reason, "tasks": [t.id for t in open_tasks]},
            )
        ],
    )
    return reason, open_tasks
