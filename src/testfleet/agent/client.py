"""The agent process: one WebSocket to the hub, kept up with backoff; tasks survive reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Coroutine
from typing import Any

from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from testfleet import __version__
from testfleet.agent.artifacts import ArtifactUploader
from testfleet.agent.config import AgentConfig, host_slots
from testfleet.agent.devices import Inventory, ProviderError, make_provider
from testfleet.agent.devtools import DevTools
from testfleet.agent.executor import StepSite, TaskExecutor
from testfleet.agent.outbox import Outbox
from testfleet.agent.processes import ProcessGuard, default_state_dir
from testfleet.agent.screens import Screens
from testfleet.protocol.version import WIRE_VERSION
from testfleet.protocol.wire import (
    HUB_MESSAGES,
    Ack,
    DeviceSpec,
    Error,
    Heartbeat,
    Initialized,
    Register,
    RunTask,
    SetHeartbeat,
    StopTask,
)
from testfleet.protocol.wire_dev import DevList, DevResume, DevRun, DevScreenshot, DevSet

_log = logging.getLogger(__name__)
FATAL_CODES = frozenset(
    {
        "unauthenticated",
        "invalid_token",
        "forbidden",
        "name_in_use",
        "name_not_allowed",
        "token_revoked",
        "unsupported_wire_version",
    }
)
RESEND_CODES = frozenset({"seq_gap"})
"""Errors after which the agent connects again and sends its unacknowledged events anew."""
_FLUSH_ON_EXIT = 3.0
INITIALIZED_TIMEOUT = 60.0
"""Seconds to wait for the hub to take a registration (it admits them a few at a time)."""


class AgentRefused(Exception):
    """The hub refused this agent for a reason that retrying will not fix."""


class Agent:
    """Connects to the hub, registers, runs what it is told, and reports every event."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.outbox = Outbox()
        state_dir = config.state_dir or default_state_dir(config.hub_url, config.name)
        self.processes = ProcessGuard(state_dir) if config.guard_processes else None
        self.uploader = ArtifactUploader(config.http_url, config.token)
        providers = [make_provider(spec) for spec in config.providers]  # ProviderError
        self.inventory = Inventory(self.outbox, host_slots(config.slots, config.labels), providers)
        self.executor = TaskExecutor(
            self.outbox,
            self.processes,
            uploader=self.uploader,
            work_root=config.work_root,
            keep_work=config.keep_work,
            environment=self.inventory.environment,
            site=StepSite(config.name, config.hub_url, config.token, config.cache_dir),
        )
        self.devtools = DevTools(self.outbox, self.executor.pausing, self.executor.workdirs)
        self.screens = Screens(self.outbox, self.executor.task_devices, self.inventory.url_of)
        self.agent_id: int | None = None
        self.connected = asyncio.Event()
        self._stopping = asyncio.Event()
        self._heartbeat = 1.0
        self._chores: set[asyncio.Task[None]] = set()

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` without holding up the connection's reader (kept until it ends)."""
        task = asyncio.create_task(work)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    def stop(self) -> None:
        """Ask the agent to finish: running tasks are cancelled and reported."""
        self._stopping.set()

    @property
    def devices(self) -> list[DeviceSpec]:
        """The devices offered now."""
        return self.inventory.current()

    async def run(self) -> None:
        """Start the device providers, then stay connected until stopped; raises AgentRefused
        on a permanent refusal (or a provider that cannot start)."""
        try:
            await self.inventory.start()
        except ProviderError as error:
            await self.inventory.close()
            raise AgentRefused(str(error)) from None
        if self.processes is not None:
            self.processes.start()
        try:
            await self._stay_connected()
        finally:
            if self.processes is not None:
                self.processes.stop()
            await self.inventory.close()

    async def _stay_connected(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            try:
                await self._session()
                attempt = 0
            except AgentRefused:
                raise
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as error:
                _log.warning(
                    "hub %s unreachable or connection lost: %s",
                    self.config.hub_url,
                    error or type(error).__name__,
                )
            except InvalidURI as error:
                raise AgentRefused(f"bad hub URL: {error}") from None
            self.connected.clear()
            if self._stopping.is_set():
                break
            ceiling = min(self.config.reconnect_max, self.config.reconnect_min * 2**attempt)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(random.uniform(self.config.reconnect_min, ceiling)):
                    await self._stopping.wait()
        await self.executor.stop_all("agent shutting down")
        await self.uploader.aclose()

    async def _session(self) -> None:
        headers = {"Authorization": f"Bearer {self.config.token}"} if self.config.token else {}
        async with connect(
            self.config.websocket_url,
            additional_headers=headers,
            open_timeout=10,
            # Every 30 s, as the hub pings: a hub that froze or vanished without closing is
            # found within a minute; more often, pings would be most of a large fleet's frames.
            ping_interval=30,
            ping_timeout=20,
            max_size=8 * 1024 * 1024,
            # No permessage-deflate: frames are small JSON, and its zlib state cost the hub
            # about 50 KB per agent connection (docs/scaling.md).
            compression=None,
        ) as websocket:
            await websocket.send(
                Register(
                    name=self.config.name,
                    instance_id=self.config.instance_id,
                    version=__version__,
                    wire_version=WIRE_VERSION,
                    labels=self.config.labels,
                    devices=self.devices,
                    held_tasks=self.executor.held(),
                ).model_dump_json()
            )
            initialized = await self._await_initialized(websocket)
            self.agent_id = initialized.agent_id
            self._heartbeat = initialized.heartbeat_interval
            self.outbox.resume_after(initialized.last_seq)
            _log.info(
                "registered with hub %s as agent %s (id %d), %d event(s) to resend",
                initialized.server_id,
                self.config.name,
                initialized.agent_id,
                len(self.outbox),
            )
            self.connected.set()
            loops = [
                asyncio.create_task(self._send_events(websocket)),
                asyncio.create_task(self._send_heartbeats(websocket)),
                asyncio.create_task(self._receive(websocket)),
                asyncio.create_task(self._stopping.wait()),
            ]
            try:
                done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
                if self._stopping.is_set():
                    await self._drain()
                for task in done:
                    if not task.cancelled() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
            finally:
                for task in loops:
                    task.cancel()
                await asyncio.gather(*loops, return_exceptions=True)

    async def _await_initialized(self, websocket: ClientConnection) -> Initialized:
        async with asyncio.timeout(INITIALIZED_TIMEOUT):
            reply = HUB_MESSAGES.validate_json(await websocket.recv())
        if isinstance(reply, Error):
            if reply.code in FATAL_CODES:
                raise AgentRefused(f"{reply.code}: {reply.message}")
            raise ConnectionError(f"hub refused registration: {reply.code}: {reply.message}")
        if not isinstance(reply, Initialized):
            raise ConnectionError(f"expected INITIALIZED, got {reply.type}")
        return reply

    async def _drain(self) -> None:
        """On shutdown: cancel tasks, then give the hub a moment to store their last events."""
        await self.executor.stop_all("agent shutting down")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_FLUSH_ON_EXIT):
                await self.outbox.emptied.wait()

    async def _send_events(self, websocket: ClientConnection) -> None:
        sent = 0
        while True:
            self.outbox.changed.clear()
            for entry in self.outbox.after(sent):
                await websocket.send(entry.text)
                sent = entry.seq
            await self.outbox.changed.wait()

    async def _send_heartbeats(self, websocket: ClientConnection) -> None:
        beat = Heartbeat().model_dump_json()
        while True:
            await websocket.send(beat)
            await asyncio.sleep(self._heartbeat)

    async def _receive(self, websocket: ClientConnection) -> None:
        async for raw in websocket:
            try:
                message = HUB_MESSAGES.validate_json(raw)
            except ValidationError as error:
                _log.error("unreadable message from the hub: %s", error)
                continue
            match message:
                case Ack():
                    self.outbox.ack(message.seq)
                case RunTask():
                    self.executor.start(message)
                case StopTask():
                    self.executor.stop(message.task_id, message.reason)
                case SetHeartbeat():
                    self._heartbeat = message.interval
                case DevSet():
                    self.executor.pausing.set_flags(message.job_id, message.flags)
                case DevResume():
                    self.executor.pausing.resume(
                        message.job_id, message.by, ignore_failure=message.ignore_failure
                    )
                case DevList():
                    await self.devtools.listing(message)
                case DevRun():
                    self.devtools.run(message)
                case DevScreenshot():
                    self._background(self.screens.take(message))
                case Error():
                    _log.error("hub: %s: %s", message.code, message.message)
                    if message.code in RESEND_CODES:
                        raise ConnectionError(f"hub: {message.code}: {message.message}")
                    if message.fatal:
                        if message.code in FATAL_CODES:
                            raise AgentRefused(f"{message.code}: {message.message}")
                        return
                case _:
                    _log.warning(
                        "unexpected message from the hub: %s",
                        json.dumps(message.model_dump(mode="json"))[:200],
                    )
