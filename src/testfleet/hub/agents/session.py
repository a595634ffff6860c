"""One agent's connection, from REGISTER to close: events in, commands out.

Three tasks per connection: the reader takes frames off the socket (heartbeats only count as
signs of life), the processor stores events in batches and acknowledges them, and the writer
sends what services queued for the agent (`AgentConnection.send`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocketDisconnect

from testfleet.hub.agents.connections import AgentConnection, AgentSocket, Connections
from testfleet.hub.agents.messages import Refusal, parse_frame
from testfleet.hub.delivery import Delivery
from testfleet.hub.jobs.news import JobNews
from testfleet.hub.metrics import HubMetrics
from testfleet.hub.signals import Signals
from testfleet.protocol.version import WIRE_VERSION
from testfleet.protocol.wire import (
    Ack,
    Error,
    EventMessage,
    Heartbeat,
    Initialized,
    Register,
    StopTask,
    utcnow,
)
from testfleet.store import agent_ops
from testfleet.store.db import Store
from testfleet.store.devices import DeviceOffer
from testfleet.store.ingest import TaskIndex, apply_events

_log = logging.getLogger(__name__)
REGISTER_TIMEOUT = 10.0
MAX_BATCH = 500


class AgentSessions:
    """Serves agents' WebSockets."""

    def __init__(
        self,
        *,
        server_id: str,
        heartbeat_interval: float,
        store: Store,
        connections: Connections,
        delivery: Delivery,
        news: JobNews,
        signals: Signals,
        metrics: HubMetrics,
        task_index: TaskIndex,
        before_ack: Callable[[list[EventMessage]], Awaitable[None]] | None = None,
    ) -> None:
        self._server_id = server_id
        self._heartbeat_interval = heartbeat_interval
        self._store = store
        self._connections = connections
        self._delivery = delivery
        self._news = news
        self._signals = signals
        self._metrics = metrics
        self._task_index = task_index
        self._before_ack = before_ack
        """Called with each stored batch before it is acknowledged (coverage steps)."""

    async def serve(self, socket: AgentSocket) -> None:
        """Run one agent connection from REGISTER to close."""
        await socket.accept()
        try:
            register = await self._receive_register(socket)
        except WebSocketDisconnect:
            return
        connection = await self._register(socket, register) if register is not None else None
        if connection is None:
            with contextlib.suppress(Exception):
                await socket.close(code=1008)
            return
        writer = asyncio.create_task(self._write(connection), name=f"agent-{connection.name}-w")
        processor = asyncio.create_task(
            self._process(connection), name=f"agent-{connection.name}-p"
        )
        try:
            await self._read(connection)
        finally:
            self._connections.drop(connection)
            processor.cancel()
            writer.cancel()
            await asyncio.gather(processor, writer, return_exceptions=True)
            _log.info("agent %s disconnected", connection.name)

    async def _receive_register(self, socket: AgentSocket) -> Register | None:
        try:
            async with asyncio.timeout(REGISTER_TIMEOUT):
                text = await socket.receive_text()
        except TimeoutError:
            timeout = Refusal("register_timeout", f"no REGISTER within {REGISTER_TIMEOUT:g} s")
            await self._refuse(socket, timeout, fatal=True)
            return None
        message = parse_frame(text)
        if isinstance(message, Refusal):
            await self._refuse(socket, message)
            return None
        if not isinstance(message, Register):
            first = Refusal(
                "not_registered", f"the first message must be REGISTER, got {message.type}"
            )
            await self._refuse(socket, first, fatal=True)
            return None
        if message.wire_version != WIRE_VERSION:
            version = Refusal(
                "unsupported_wire_version",
                f"agent speaks wire version {message.wire_version}; this hub speaks {WIRE_VERSION}",
            )
            await self._refuse(socket, version, fatal=True)
            return None
        return message

    async def _register(self, socket: AgentSocket, register: Register) -> AgentConnection | None:
        existing = self._connections.named(register.name)
        if existing is not None:
            if existing.instance_id != register.instance_id:
                in_use = Refusal(
                    "name_in_use",
                    f"an agent named {register.name!r} is already connected (another "
                    "process); give this one another --name",
                )
                await self._refuse(socket, in_use, fatal=True)
                return None
            await existing.close(1012)  # the same process reconnected; the old socket is stale
        offered = [
            DeviceOffer(
                name=d.name,
                kind=d.kind,
                capabilities=d.capabilities,
                labels={**register.labels, **d.labels},
            )
            for d in register.devices
        ]
        registration = await self._store.write(
            agent_ops.register_agent,
            name=register.name,
            instance_id=register.instance_id,
            version=register.version,
            labels=register.labels,
            devices=offered,
            held_tasks=register.held_tasks,
            hub=self._server_id,
            now=utcnow(),
        )
        agent = registration.agent
        connection = AgentConnection(
            agent_id=agent.id,
            name=register.name,
            instance_id=register.instance_id,
            socket=socket,
            last_seq=agent.last_seq,
        )
        self._connections.add(connection)
        connection.send(
            Initialized(
                agent_id=agent.id,
                server_id=self._server_id,
                last_seq=agent.last_seq,
                heartbeat_interval=self._heartbeat_interval,
            )
        )
        await self._delivery.resend(registration.resend)
        for task_id in registration.stale:
            connection.send(StopTask(task_id=task_id, reason="the hub has already ended it"))
        for job_id in {task.job_id for task in registration.lost}:
            await self._news.changed(job_id)
        self._signals.devices_changed()
        _log.info(
            "agent %s registered with %d device(s), %d held task(s)",
            register.name,
            len(register.devices),
            len(register.held_tasks),
        )
        return connection

    async def _read(self, connection: AgentConnection) -> None:
        socket = connection.socket
        while True:
            try:
                text = await socket.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                return
            connection.last_seen = time.monotonic()
            message = parse_frame(text)
            if isinstance(message, Refusal):
                await self._refuse(socket, message)
            elif isinstance(message, Register):
                connection.send(
                    Error(
                        code="already_registered",
                        message="REGISTER is only valid as the first message",
                    )
                )
            elif not isinstance(message, Heartbeat):
                connection.inbox.put_nowait(message)

    async def _process(self, connection: AgentConnection) -> None:
        """Store events in batches, one transaction each, then acknowledge them."""
        while True:
            batch = [await connection.inbox.get()]
            while len(batch) < MAX_BATCH and not connection.inbox.empty():
                batch.append(connection.inbox.get_nowait())
            try:
                applied = await self._store.write(
                    apply_events,
                    self._task_index,
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
                await connection.close(1011)
                return
            connection.last_seq = applied.highest_seq
            connection.last_seq_read = True
            self._metrics.events_stored.inc(applied.stored)
            if self._before_ack is not None:
                try:
                    await self._before_ack(batch)
                except Exception:  # the events are stored: acknowledge them all the same
                    _log.exception("acting on events of agent %s failed", connection.name)
            connection.send(Ack(seq=applied.highest_seq))
            await asyncio.gather(*(self._news.changed(job_id) for job_id in applied.jobs))
            if applied.devices_changed:
                self._signals.devices_changed()
            for task_id in applied.unknown_tasks:
                connection.send(
                    Error(code="unknown_task", message=f"task {task_id} is unknown to this hub")
                )

    async def _write(self, connection: AgentConnection) -> None:
        while True:
            text = await connection.outbox.get()
            try:
                await connection.socket.send_text(text)
            except Exception:
                return

    async def _refuse(self, socket: AgentSocket, refusal: Refusal, *, fatal: bool = False) -> None:
        _log.warning("agent message refused: %s: %s", refusal.code, refusal.message)
        self._metrics.agent_errors.inc()
        with contextlib.suppress(Exception):
            await socket.send_text(refusal.error(fatal=fatal).model_dump_json())
