"""One probe's connection, from REGISTER to close: the build announced (and stored once),
then the Drill4J session messages handled in order and acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from starlette.websockets import WebSocketDisconnect

from testfleet.hub.coverage.connections import ProbeConnection, ProbeConnections, ProbeSocket
from testfleet.hub.coverage.parts import CheckedPart, Refusal, parse_probe_frame
from testfleet.hub.coverage.service import CoverageService
from testfleet.hub.metrics import HubMetrics
from testfleet.protocol.coverage import (
    AstClass,
    InitDataPart,
    ProbeHeartbeat,
    ProbeInitialized,
    ProbeMessageModel,
    ProbeReady,
    ProbeRegister,
    ProbeRegistered,
)
from testfleet.protocol.version import WIRE_VERSION
from testfleet.protocol.wire import utcnow
from testfleet.store import coverage as coverage_store
from testfleet.store import coverage_data
from testfleet.store.coverage_records import BuildRecord
from testfleet.store.db import Store

_log = logging.getLogger(__name__)
REGISTER_TIMEOUT = 10.0
BUILD_TIMEOUT = 120.0
FLUSH_INTERVAL = 2.0
CACHED_LAYOUTS = 64
"""Builds whose class layout (to check parts against) is kept in memory."""


class Refused(Exception):
    """The connection is refused; the probe gets the refusal as a fatal ERROR."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


class ProbeServer:
    """Serves probes' WebSockets."""

    def __init__(
        self,
        *,
        server_id: str,
        store: Store,
        connections: ProbeConnections,
        service: CoverageService,
        metrics: HubMetrics,
        flush_interval: float = FLUSH_INTERVAL,
    ) -> None:
        self._server_id = server_id
        self._store = store
        self._connections = connections
        self._service = service
        self._metrics = metrics
        self._flush_interval = flush_interval
        self._layouts: dict[int, dict[str, tuple[int, int, int]]] = {}

    async def serve(self, socket: ProbeSocket) -> None:
        """Run one probe connection until it closes."""
        await socket.accept()
        try:
            connection, held = await self._register(socket)
        except Refused as refused:
            _log.warning("probe refused: %s", refused.refusal.message)
            with contextlib.suppress(Exception):
                await socket.send_text(refused.refusal.error(fatal=True).model_dump_json())
                await socket.close(code=1008)
            return
        except (WebSocketDisconnect, RuntimeError):
            return
        writer = asyncio.create_task(self._write(connection), name=f"probe-{connection.agent_id}")
        try:
            await self._service.probe_ready(connection, held)
            connection.send(ProbeReady())  # after the sessions it must join: it has them now
            await self._read(connection)
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            if self._connections.drop(connection):
                with contextlib.suppress(Exception):
                    await self._store.write(
                        coverage_store.disconnect_probe, connection.agent_id, connection.instance_id
                    )
            self._service.probe_gone(connection)
            _log.info("probe %s disconnected", connection.agent_id)

    async def _receive(self, socket: ProbeSocket, within: float) -> ProbeMessageModel:
        try:
            async with asyncio.timeout(within):
                text = await socket.receive_text()
        except TimeoutError:
            raise Refused(Refusal("register_timeout", f"nothing within {within:g} s")) from None
        message = parse_probe_frame(text, None)
        if isinstance(message, Refusal):
            raise Refused(message)
        assert not isinstance(message, CheckedPart)
        return message

    async def _register(self, socket: ProbeSocket) -> tuple[ProbeConnection, list[str]]:
        register = await self._receive(socket, REGISTER_TIMEOUT)
        if not isinstance(register, ProbeRegister):
            raise Refused(
                Refusal(
                    "not_registered", f"the first message must be REGISTER, got {register.type}"
                )
            )
        if register.wireVersion != WIRE_VERSION:
            raise Refused(
                Refusal(
                    "unsupported_wire_version",
                    f"probe speaks wire version {register.wireVersion}; this hub speaks "
                    f"{WIRE_VERSION}",
                )
            )
        build = await self._store.read(coverage_store.get_build, register.app, register.build)
        if build is not None and build.checksum != register.buildChecksum:
            raise Refused(_mismatch(register))
        await socket.send_text(
            ProbeRegistered(
                serverId=self._server_id,
                needClasses=build is None,
                flushInterval=self._flush_interval,
            ).model_dump_json()
        )
        if build is None:
            build = await self._receive_build(socket, register)
        else:
            initialized = await self._receive(socket, BUILD_TIMEOUT)
            if not isinstance(initialized, ProbeInitialized):
                raise Refused(
                    Refusal("protocol_error", f"expected INITIALIZED, got {initialized.type}")
                )
        layout = self._layouts.pop(build.id, None)
        if layout is None:
            layout = await self._store.read(coverage_data.class_layout, build.id)
        self._layouts[build.id] = layout  # the most recently used last
        while len(self._layouts) > CACHED_LAYOUTS:
            del self._layouts[next(iter(self._layouts))]
        connection = ProbeConnection(
            agent_id=register.agentId,
            instance_id=register.instanceId,
            build=build,
            layout=layout,
            socket=socket,
        )
        previous = self._connections.get(register.agentId)
        if previous is not None:
            await previous.close(1012)  # the same probe id again: the old socket is stale
        await self._store.write(
            coverage_store.connect_probe,
            agent_id=register.agentId,
            app=register.app,
            build_id=build.id,
            instance_id=register.instanceId,
            hub=self._server_id,
            now=utcnow(),
        )
        self._connections.add(connection)
        _log.info("probe %s of %s %s connected", register.agentId, register.app, register.build)
        return connection, register.sessions

    async def _receive_build(self, socket: ProbeSocket, register: ProbeRegister) -> BuildRecord:
        classes: list[AstClass] = []
        while True:
            message = await self._receive(socket, BUILD_TIMEOUT)
            if isinstance(message, ProbeInitialized):
                break
            if not isinstance(message, InitDataPart):
                raise Refused(
                    Refusal("protocol_error", f"expected INIT_DATA_PART, got {message.type}")
                )
            classes.extend(message.astEntities)
            if len(classes) > register.classesCount:
                raise Refused(
                    Refusal(
                        "protocol_error",
                        f"more classes than the {register.classesCount} REGISTER announced",
                    )
                )
        if len(classes) != register.classesCount:
            raise Refused(
                Refusal(
                    "protocol_error",
                    f"REGISTER announced {register.classesCount} classes, {len(classes)} came",
                )
            )
        names = [c.name for c in classes]
        if len(set(names)) != len(names):
            raise Refused(Refusal("protocol_error", "two classes of the build have one name"))
        stored = await self._store.write(
            coverage_store.add_build,
            app=register.app,
            version=register.build,
            parent=register.parentBuild,
            checksum=register.buildChecksum,
            classes=classes,
            now=utcnow(),
        )
        if isinstance(stored, coverage_store.BuildConflict):
            raise Refused(_mismatch(register))
        return stored

    async def _read(self, connection: ProbeConnection) -> None:
        socket = connection.socket
        while True:
            try:
                text = await socket.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                return
            connection.last_seen = time.monotonic()
            began = time.perf_counter()
            message = parse_probe_frame(text, connection.layout)
            if isinstance(message, ProbeHeartbeat):
                continue
            try:
                await self._service.handle(connection, message)
                if isinstance(message, CheckedPart):
                    self._metrics.coverage_part_seconds.observe(time.perf_counter() - began)
                    self._metrics.coverage_parts.inc()
                elif isinstance(message, Refusal):
                    self._metrics.coverage_refused.inc()
            except Exception as error:  # the probe keeps what was not acknowledged
                _log.exception("cannot handle a message of probe %s", connection.agent_id)
                connection.send(
                    Refusal(
                        "store_error", f"not stored ({error}); reconnect and send it again"
                    ).error(fatal=True)
                )
                await asyncio.sleep(0.5)
                await connection.close(1011)
                return

    async def _write(self, connection: ProbeConnection) -> None:
        while True:
            text = await connection.outbox.get()
            try:
                await connection.socket.send_text(text)
            except Exception:
                return


def _mismatch(register: ProbeRegister) -> Refusal:
    return Refusal(
        "build_mismatch",
        f"build {register.build!r} of {register.app!r} is known with other code (checksum "
        "differs); give the changed application a new build version",
    )
