"""One agent's connection, from REGISTER to close.

Three tasks per connection: the reader takes frames off the socket (heartbeats only count as
signs of life; a full inbox makes it wait, which slows the agent down), the intake stores
events and acknowledges them (`intake.py`), and the writer sends what services queued for the
agent (`AgentConnection.send`). A revoked credential closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from starlette.websockets import WebSocketDisconnect

from testfleet.hub.agents.arrivals import Arrivals
from testfleet.hub.agents.connections import AgentConnection, AgentSocket, Connections
from testfleet.hub.agents.intake import Intake
from testfleet.hub.agents.messages import Refusal, parse_frame
from testfleet.hub.auth import Principal
from testfleet.hub.delivery import Delivery
from testfleet.hub.jobs.news import JobNews
from testfleet.hub.metrics import HubMetrics
from testfleet.hub.revocations import Revocations
from testfleet.hub.signals import Signals
from testfleet.protocol.version import WIRE_VERSION
from testfleet.protocol.wire import Error, Heartbeat, Initialized, Register, StopTask
from testfleet.store import agent_ops
from testfleet.store import agents as agent_store
from testfleet.store.db import Store
from testfleet.store.devices import DeviceOffer
from testfleet.store.writer import is_unavailable

_log = logging.getLogger(__name__)
REGISTER_TIMEOUT = 10.0
ADMITTED = 64  # registrations in progress at once (a batch); the others wait their turn
YIELD_EVERY = 64  # frames read in a row before the reader lets other tasks run


class AgentSessions:
    """Serves agents' WebSockets."""

    def __init__(
        self,
        *,
        server_id: str,
        store: Store,
        connections: Connections,
        delivery: Delivery,
        news: JobNews,
        signals: Signals,
        metrics: HubMetrics,
        intake: Intake,
        revocations: Revocations,
        on_registered: Callable[[int, str], Awaitable[None]] | None = None,
        on_dropped: Callable[[int, str], Awaitable[None]] | None = None,
    ) -> None:
        self._server_id = server_id
        self._store = store
        self._connections = connections
        self._delivery = delivery
        self._news = news
        self._signals = signals
        self._metrics = metrics
        self._intake = intake
        self._revocations = revocations
        self._admission = asyncio.Semaphore(ADMITTED)
        self._arrivals = Arrivals(store, server_id)
        self._on_registered = on_registered
        """Called with the agent's id and name once it is registered (developer mode)."""
        self._on_dropped = on_dropped
        """Called with the agent's id and name when its connection here ends."""

    async def serve(self, socket: AgentSocket, who: Principal | None = None) -> None:
        """Run one agent connection from REGISTER to close; `who` is its credential."""
        await socket.accept()
        try:
            register = await self._receive_register(socket)
        except WebSocketDisconnect:
            return
        if register is None:
            connection = None
        else:
            async with self._admission:  # a reconnecting fleet registers a few at a time
                connection = await self._register(socket, register, who)
            del register  # not kept for the connection's life (its devices, labels: ~8 KB)
        if connection is None:
            with contextlib.suppress(Exception):
                await socket.close(code=1008)
            return
        with self._revocations.watch(connection.token_id) as revoked:
            tasks: list[asyncio.Task[object]] = [
                asyncio.create_task(self._read(connection), name=f"agent-{connection.name}-r"),
                asyncio.create_task(
                    self._intake.run(connection), name=f"agent-{connection.name}-i"
                ),
                asyncio.create_task(self._write(connection), name=f"agent-{connection.name}-w"),
            ]
            if connection.token_id is not None:  # without auth there is nothing to revoke
                tasks.append(
                    asyncio.create_task(revoked.wait(), name=f"agent-{connection.name}-revoked")
                )
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                if len(tasks) > 3 and tasks[3] in done:
                    await self._end(connection, "token_revoked", "the agent's token was revoked")
                elif connection.refusals.exhausted:
                    await self._end(connection, "too_many_refusals", "too many refused messages")
                for task in done:
                    if not task.cancelled() and task.exception() is not None:
                        _log.error(
                            "agent %s: %s failed; closing the connection",
                            connection.name,
                            task.get_name(),
                            exc_info=task.exception(),
                        )
                        await connection.close(1011, "internal error on the hub")
            finally:
                self._connections.drop(connection)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                _log.info("agent %s disconnected", connection.name)
                if self._on_dropped is not None and not connection.replaced:
                    try:
                        await self._on_dropped(connection.agent_id, connection.name)
                    except Exception:
                        _log.exception("agent %s: after-disconnect work failed", connection.name)

    async def _receive_register(self, socket: AgentSocket) -> Register | None:
        message = await within_looking_time(socket.receive(), REGISTER_TIMEOUT)
        if message is None:
            timeout = Refusal("register_timeout", f"no REGISTER within {REGISTER_TIMEOUT:g} s")
            await self._refuse(socket, timeout, fatal=True)
            return None
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        parsed = parse_frame(text) if text is not None else _BINARY
        if isinstance(parsed, Refusal):
            await self._refuse(socket, parsed, fatal=True)
            return None
        if not isinstance(parsed, Register):
            first = Refusal(
                "not_registered", f"the first message must be REGISTER, got {parsed.type}"
            )
            await self._refuse(socket, first, fatal=True)
            return None
        if parsed.wire_version != WIRE_VERSION:
            version = Refusal(
                "unsupported_wire_version",
                f"agent speaks wire version {parsed.wire_version}; this hub speaks {WIRE_VERSION}",
            )
            await self._refuse(socket, version, fatal=True)
            return None
        return parsed

    async def _register(
        self, socket: AgentSocket, register: Register, who: Principal | None
    ) -> AgentConnection | None:
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
            existing.replaced = True
            await existing.close(1012, "replaced by a new connection of the same agent")
        try:
            registration = await self._record(register, who)
        except Exception as error:
            if not is_unavailable(error):
                raise
            _log.warning("agent %s cannot register now: the store is away", register.name)
            away = Refusal("store_unavailable", "the hub's store is away; connect again shortly")
            await self._refuse(socket, away)
            return None
        if isinstance(registration, agent_ops.RegistrationRefused):
            _log.warning("agent %s refused: %s", register.name, registration.reason)
            await self._refuse(socket, Refusal("name_not_allowed", registration.reason), fatal=True)
            return None
        agent = registration.agent
        heartbeat = self._connections.heartbeat_interval()
        connection = AgentConnection(
            agent_id=agent.id,
            name=register.name,
            instance_id=register.instance_id,
            socket=socket,
            token_id=who.token_id if who is not None else None,
            heartbeat=heartbeat,
            timeout=self._connections.timeout_for(heartbeat),
            last_seq=agent.last_seq,
        )
        self._connections.add(connection)
        connection.send(
            Initialized(
                agent_id=agent.id,
                server_id=self._server_id,
                last_seq=agent.last_seq,
                heartbeat_interval=heartbeat,
            )
        )
        await self._delivery.resend(registration.resend)
        for task_id in registration.stale:
            connection.send(StopTask(task_id=task_id, reason="the hub has already ended it"))
        for job_id in {task.job_id for task in registration.lost}:
            await self._news.changed(job_id)
        self._signals.devices_changed(agent.id)
        if self._on_registered is not None:
            try:
                await self._on_registered(agent.id, register.name)
            except Exception:  # the agent works without it; its developer sees the flags off
                _log.exception("agent %s: after-registration work failed", register.name)
        _log.info(
            "agent %s registered with %d device(s), %d held task(s)",
            register.name,
            len(register.devices),
            len(register.held_tasks),
        )
        return connection

    async def _record(
        self, register: Register, who: Principal | None
    ) -> agent_ops.Registration | agent_ops.RegistrationRefused:
        """Record the agent and its devices; reconcile its tasks; bind an agent token."""
        offered = [
            DeviceOffer(
                name=d.name,
                kind=d.kind,
                capabilities=d.capabilities,
                labels={**register.labels, **d.labels},
                url=d.url,
                session_capabilities=d.session_capabilities or None,
            )
            for d in register.devices
        ]
        bind = who is not None and who.role == "agent"
        return await self._arrivals.register(
            agent_ops.Arrival(
                agent=agent_store.Arrival(
                    name=register.name,
                    instance_id=register.instance_id,
                    version=register.version,
                    labels=register.labels,
                ),
                devices=offered,
                held_tasks=register.held_tasks,
                bind_token=who.token_id if bind and who is not None else None,
            )
        )

    async def _read(self, connection: AgentConnection) -> None:
        socket = connection.socket
        frames = 0
        while True:
            try:
                message = await socket.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                return
            connection.last_seen = time.monotonic()
            text = message.get("text")
            if text == HEARTBEAT_FRAME:  # most frames of a large idle fleet: no parsing
                continue
            parsed = parse_frame(text) if text is not None else _BINARY
            if isinstance(parsed, Refusal):
                self._metrics.agent_errors.inc()
                if connection.refusals.spend():
                    _log.warning(
                        "agent %s: message refused: %s: %s",
                        connection.name,
                        parsed.code,
                        parsed.message,
                    )
                    connection.send(parsed.error())
                if connection.refusals.exhausted:
                    await self._end(connection, "too_many_refusals", "too many refused messages")
                    return
            elif isinstance(parsed, Register):
                connection.send(
                    Error(
                        code="already_registered",
                        message="REGISTER is only valid as the first message",
                    )
                )
            elif not isinstance(parsed, Heartbeat):
                await connection.inbox.put(parsed, len(text or ""))
            frames += 1
            if frames % YIELD_EVERY == 0:
                await asyncio.sleep(0)

    async def _write(self, connection: AgentConnection) -> None:
        while True:
            for text in await connection.outbox.take():
                try:
                    await connection.socket.send_text(text)
                except Exception:
                    return

    async def _end(self, connection: AgentConnection, code: str, reason: str) -> None:
        """Tell the agent why, and close its connection."""
        _log.warning("agent %s: closing its connection: %s", connection.name, reason)
        with contextlib.suppress(Exception):
            await connection.socket.send_text(
                Error(code=code, message=reason, fatal=True).model_dump_json()
            )
        await connection.close(1008, reason)

    async def _refuse(self, socket: AgentSocket, refusal: Refusal, *, fatal: bool = False) -> None:
        _log.warning("agent message refused: %s: %s", refusal.code, refusal.message)
        self._metrics.agent_errors.inc()
        with contextlib.suppress(Exception):
            await socket.send_text(refusal.error(fatal=fatal).model_dump_json())


async def within_looking_time(
    receiving: Coroutine[object, object, Mapping[str, Any]], seconds: float
) -> Mapping[str, Any] | None:
    """What `receiving` gives, or None once the hub has looked for `seconds`.

    Time the hub's event loop was stalled does not count (each second waited counts at most
    a second): a hub that froze while a fleet reconnected would otherwise refuse every agent
    whose REGISTER sat unread in its socket, and they would all come back at once."""
    task = asyncio.ensure_future(receiving)
    loop = asyncio.get_running_loop()
    looked = 0.0
    try:
        while looked < seconds:
            began = loop.time()
            wait = min(1.0, seconds - looked)
            done, _ = await asyncio.wait({task}, timeout=wait)
            if done:
                return task.result()
            looked += min(loop.time() - began, wait)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    return None


HEARTBEAT_FRAME = Heartbeat().model_dump_json()
_BINARY = Refusal("binary_frame", "frames must be JSON text, not binary")
