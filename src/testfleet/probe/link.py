"""The probe's WebSocket to the hub: register, announce the build, then send numbered
messages and receive the Drill4J agent actions; reconnects with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable
from typing import TypeVar

from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from testfleet.probe.build import Build
from testfleet.probe.config import ProbeConfig
from testfleet.probe.outbox import ProbeOutbox
from testfleet.protocol.coverage import (
    HUB_TO_PROBE,
    AgentAction,
    HubToProbeModel,
    InitDataPart,
    ProbeAck,
    ProbeError,
    ProbeHeartbeat,
    ProbeInitialized,
    ProbeReady,
    ProbeRegister,
    ProbeRegistered,
)
from testfleet.protocol.version import WIRE_VERSION

_log = logging.getLogger("testfleet.probe")
M = TypeVar("M", bound=HubToProbeModel)
FATAL_CODES = frozenset(
    {"unauthenticated", "invalid_token", "forbidden", "unsupported_wire_version", "build_mismatch"}
)
INIT_PART_BYTES = 2 * 1024 * 1024
HEARTBEAT = 5.0
RECONNECT_MIN, RECONNECT_MAX = 0.2, 5.0


class ProbeRefused(Exception):
    """The hub refused the probe for a reason that retrying will not fix."""


class Link:
    """One probe's connection to the hub, kept up until `stop()`."""

    def __init__(
        self,
        config: ProbeConfig,
        build: Build,
        outbox: ProbeOutbox,
        on_action: Callable[[AgentAction], None],
        held_sessions: Callable[[], list[str]],
    ) -> None:
        self.config = config
        self.build = build
        self.outbox = outbox
        self.on_action = on_action
        self.held_sessions = held_sessions
        self.agent_id = config.probe_id()
        self.instance_id = uuid.uuid4().hex
        self.ready = asyncio.Event()
        self.flush_interval = 2.0
        self.refused: str | None = None
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Close the connection and stop reconnecting."""
        self._stopping.set()

    async def run(self) -> None:
        """Stay connected until stopped or refused."""
        attempt = 0
        while not self._stopping.is_set():
            try:
                await self._connection()
                attempt = 0
            except ProbeRefused as error:
                self.refused = str(error)
                _log.error("testfleet probe refused by the hub: %s", error)
                return
            except InvalidURI as error:
                self.refused = f"bad hub URL: {error}"
                _log.error("testfleet probe: %s", self.refused)
                return
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as error:
                # Once per outage: the application's own output is not the probe's log.
                log = _log.debug if attempt else _log.warning
                log("testfleet probe: hub unreachable or connection lost (retrying): %r", error)
            except Exception:  # a bug of ours: keep trying, never take the application down
                _log.exception("testfleet probe: connection failed")
            self.ready.clear()
            delay = min(RECONNECT_MAX, RECONNECT_MIN * 2**attempt) * random.uniform(0.8, 1.2)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()

    async def _connection(self) -> None:
        token = self.config.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with connect(
            self.config.websocket_url,
            additional_headers=headers,
            open_timeout=10,
            ping_interval=10,
            ping_timeout=20,
            max_size=64 * 1024 * 1024,
        ) as socket:
            await self._handshake(socket)
            self.ready.set()
            loops = [
                asyncio.create_task(self._send(socket)),
                asyncio.create_task(self._receive(socket)),
                asyncio.create_task(self._heartbeat(socket)),
                asyncio.create_task(self._stopping.wait()),
            ]
            try:
                done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if not task.cancelled() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
            finally:
                self.ready.clear()
                for task in loops:
                    task.cancel()
                await asyncio.gather(*loops, return_exceptions=True)

    async def _handshake(self, socket: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):  # refused at once: the ERROR is queued
            await self._register(socket)
        registered = await self._expect(socket, ProbeRegistered)
        self.flush_interval = registered.flushInterval
        if registered.needClasses:
            await self._send_build(socket)
        await socket.send(ProbeInitialized().model_dump_json())
        await self._expect(socket, ProbeReady)
        _log.info(
            "testfleet probe %s: %s %s registered with hub %s (%d module(s))",
            self.agent_id,
            self.config.app,
            self.config.build,
            registered.serverId,
            len(self.build.modules),
        )

    async def _register(self, socket: ClientConnection) -> None:
        await socket.send(
            ProbeRegister(
                agentId=self.agent_id,
                instanceId=self.instance_id,
                app=self.config.app,
                build=self.config.build,
                parentBuild=self.config.parent_build,
                buildChecksum=self.build.checksum,
                classesCount=len(self.build.modules),
                wireVersion=WIRE_VERSION,
                sessions=self.held_sessions(),
            ).model_dump_json()
        )

    async def _send_build(self, socket: ClientConnection) -> None:
        """The build's classes in INIT_DATA_PARTs of about 2 MB."""
        chunk: list[str] = []
        size = 0
        for cls in self.build.classes:
            text = cls.model_dump_json()
            if chunk and size + len(text) > INIT_PART_BYTES:
                await socket.send(_init_part(chunk))
                chunk, size = [], 0
            chunk.append(text)
            size += len(text)
        if chunk:
            await socket.send(_init_part(chunk))

    async def _expect(self, socket: ClientConnection, kind: type[M]) -> M:
        async with asyncio.timeout(60):
            while True:
                message = HUB_TO_PROBE.validate_json(await socket.recv())
                if isinstance(message, kind):
                    return message
                if isinstance(message, ProbeError):
                    if message.code in FATAL_CODES or message.fatal:
                        raise ProbeRefused(f"{message.code}: {message.message}")
                    _log.warning("testfleet probe: hub: %s: %s", message.code, message.message)
                elif isinstance(message, ProbeAck):
                    self.outbox.ack(message.seq)
                else:
                    self.on_action(message)  # type: ignore[arg-type]

    async def _send(self, socket: ClientConnection) -> None:
        sent = 0
        while True:
            self.outbox.changed.clear()
            for seq, text in self.outbox.after(sent):
                await socket.send(text)
                sent = seq
            await self.outbox.changed.wait()

    async def _receive(self, socket: ClientConnection) -> None:
        async for raw in socket:
            try:
                message = HUB_TO_PROBE.validate_json(raw)
            except ValidationError as error:
                _log.error("testfleet probe: unreadable message from the hub: %s", error)
                continue
            if isinstance(message, ProbeAck):
                self.outbox.ack(message.seq)
            elif isinstance(message, ProbeError):
                _log.error("testfleet probe: hub: %s: %s", message.code, message.message)
                if message.seq is not None:
                    self.outbox.drop(message.seq)
                if message.fatal:
                    if message.code in FATAL_CODES:
                        raise ProbeRefused(f"{message.code}: {message.message}")
                    return
            elif isinstance(message, ProbeRegistered | ProbeReady):
                continue
            else:
                self.on_action(message)

    async def _heartbeat(self, socket: ClientConnection) -> None:
        beat = ProbeHeartbeat().model_dump_json()
        while True:
            await asyncio.sleep(HEARTBEAT)
            await socket.send(beat)


def _init_part(classes: list[str]) -> str:
    kind = InitDataPart.model_fields["type"].default
    return f'{{"type":"{kind}","astEntities":[{",".join(classes)}]}}'
