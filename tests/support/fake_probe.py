"""A probe that speaks the real coverage protocol over an in-memory socket, driven by the
test: it announces a build of made-up modules and answers the hub's actions by hand."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from testfleet.hub.runtime import Hub
from testfleet.protocol.coverage import (
    HUB_TO_PROBE,
    AddAgentSessionData,
    AstClass,
    AstFunction,
    CancelAgentSession,
    CancelAllAgentSessions,
    CoverDataPart,
    ExecClassData,
    HubToProbeModel,
    InitDataPart,
    ProbeAck,
    ProbeError,
    ProbeInitialized,
    ProbeReady,
    ProbeRegister,
    ProbeRegistered,
    SessionCancelled,
    SessionFinished,
    SessionsCancelled,
    SessionsFinished,
    SessionStarted,
    StartAgentSession,
    StopAgentSession,
    StopAllAgentSessions,
)
from testfleet.protocol.version import WIRE_VERSION
from tests.support.inproc import WAIT, MemorySocket

M = TypeVar("M", bound=BaseModel)
ACTIONS = (
    StartAgentSession,
    StopAgentSession,
    CancelAgentSession,
    StopAllAgentSessions,
    CancelAllAgentSessions,
    AddAgentSessionData,
)


def module(
    name: str,
    lines: int,
    functions: dict[str, tuple[int, int, str]] | None = None,
    class_id: int | None = None,
) -> AstClass:
    """A made-up module: `lines` probes on lines 1..lines; functions name -> (first probe,
    count, checksum)."""
    return AstClass(
        id=class_id if class_id is not None else abs(hash(name)) % 2**62,
        name=name,
        lines=list(range(1, lines + 1)),
        functions=[
            AstFunction(
                name=fn,
                line=first + 1,
                endLine=first + count,
                first=first,
                count=count,
                checksum=checksum,
            )
            for fn, (first, count, checksum) in (functions or {}).items()
        ],
        source="\n".join(f"line {n}" for n in range(1, lines + 1)),
    )


@dataclass(eq=False)
class FakeProbe:
    """One probe connection; `received` keeps what the hub sent that no `expect` took."""

    hub: Hub
    agent_id: str
    app: str
    build: str
    classes: list[AstClass]
    parent: str | None = None
    checksum: str = ""
    socket: MemorySocket = field(default_factory=MemorySocket)
    received: list[HubToProbeModel] = field(default_factory=list)
    seq: int = 0
    held: set[str] = field(default_factory=set)
    data: list[str] = field(default_factory=list)
    actions: list[HubToProbeModel] = field(default_factory=list)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _new: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if not self.checksum:
            self.checksum = uuid.uuid5(uuid.NAMESPACE_OID, repr(self.classes)).hex[:16]

    def by_name(self, name: str) -> AstClass:
        """A class of the build."""
        return next(c for c in self.classes if c.name == name)

    async def connect(self, held: list[str] | None = None) -> ProbeRegistered:
        """Register (sending the build if the hub asks) and wait for READY."""
        self.socket = MemorySocket()
        self.received.clear()
        self._tasks.append(asyncio.create_task(self.hub.probe_server.serve(self.socket)))
        self._tasks.append(asyncio.create_task(self._receive()))
        self.send(
            ProbeRegister(
                agentId=self.agent_id,
                instanceId=uuid.uuid4().hex,
                app=self.app,
                build=self.build,
                parentBuild=self.parent,
                buildChecksum=self.checksum,
                classesCount=len(self.classes),
                wireVersion=WIRE_VERSION,
                sessions=held or [],
            )
        )
        registered = await self.expect(ProbeRegistered, ProbeError)
        if isinstance(registered, ProbeError):
            raise AssertionError(f"refused: {registered.code}: {registered.message}")
        if registered.needClasses:
            self.send(InitDataPart(astEntities=self.classes))
        self.send(ProbeInitialized())
        await self.expect(ProbeReady)
        return registered

    def send(self, message: BaseModel) -> None:
        """One frame, as it is."""
        self.socket.to_hub.put_nowait(message.model_dump_json())

    def send_raw(self, text: str) -> None:
        """A frame of any text."""
        self.socket.to_hub.put_nowait(text)

    def numbered(self, message: M) -> M:
        """Send with this probe's next seq."""
        self.seq += 1
        numbered = message.model_copy(update={"seq": self.seq})
        self.send(numbered)
        return numbered

    def part(self, session_id: str, hits: dict[str, list[int]], test: str = "") -> CoverDataPart:
        """A COVERAGE_DATA_PART: class name -> indexes of the probes hit."""
        data = []
        for name, probes in hits.items():
            cls = self.by_name(name)
            bits = [False] * len(cls.lines)
            for index in probes:
                bits[index] = True
            data.append(ExecClassData(id=cls.id, className=name, probes=bits, testName=test))
        return self.numbered(CoverDataPart(sessionId=session_id, data=data))

    async def expect(self, *kinds: type[M], within: float = WAIT) -> M:
        """The next message of one of `kinds` (others are kept)."""
        deadline = time.monotonic() + within
        while True:
            for index, message in enumerate(self.received):
                if isinstance(message, kinds):
                    del self.received[index]
                    return message  # type: ignore[return-value]
            left = deadline - time.monotonic()
            if left <= 0:
                names = ", ".join(k.__name__ for k in kinds)
                raise AssertionError(f"{self.agent_id}: no {names} within {within:g} s")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._new.wait()

    async def acked(self, seq: int | None = None) -> None:
        """Until the hub acknowledged up to `seq` (default: everything sent)."""
        target = self.seq if seq is None else seq
        while (await self.expect(ProbeAck)).seq < target:
            pass

    def answer(self, before_finish: list[CoverDataPart] | None = None) -> None:
        """From now on answer every action as a probe does (SESSION_STARTED, ...)."""

        async def loop() -> None:
            while True:
                action = await self.expect(*ACTIONS, within=3600)
                self.actions.append(action)
                match action:
                    case StartAgentSession(payload=payload):
                        self.numbered(
                            SessionStarted(
                                sessionId=payload.sessionId,
                                testType=payload.testType,
                                isRealtime=payload.isRealtime,
                                ts=1,
                            )
                        )
                    case StopAgentSession(payload=payload):
                        self.numbered(SessionFinished(sessionId=payload.sessionId, ts=2))
                    case CancelAgentSession(payload=payload):
                        self.numbered(SessionCancelled(sessionId=payload.sessionId, ts=2))
                    case StopAllAgentSessions():
                        self.numbered(SessionsFinished(ids=list(self.held), ts=2))
                    case CancelAllAgentSessions():
                        self.numbered(SessionsCancelled(ids=list(self.held), ts=2))
                    case AddAgentSessionData(payload=payload):
                        self.data.append(payload.data)
                if isinstance(action, StartAgentSession):
                    self.held.add(action.payload.sessionId)
                elif isinstance(action, StopAgentSession | CancelAgentSession):
                    self.held.discard(action.payload.sessionId)
                elif isinstance(action, StopAllAgentSessions | CancelAllAgentSessions):
                    self.held.clear()

        self._tasks.append(asyncio.create_task(loop()))

    async def disconnect(self) -> None:
        """Hang up; the hub's side of the connection ends before this returns."""
        self.socket.to_hub.put_nowait(None)
        serving, rest = self._tasks[0], self._tasks[1:]
        for task in rest:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WAIT):
                await asyncio.gather(serving, return_exceptions=True)
        await asyncio.gather(*rest, return_exceptions=True)
        self._tasks.clear()

    async def _receive(self) -> None:
        while True:
            text = await self.socket.to_agent.get()
            if text is None:
                return
            self.received.append(HUB_TO_PROBE.validate_json(text))
            self._new.set()
