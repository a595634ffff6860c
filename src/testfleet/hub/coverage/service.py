"""Coverage sessions (seed 000, steps 1-12 and the cancel exception): the admin's actions
sent to probes, the probes' answers, and sessions finished into their stored coverage."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from pydantic import BaseModel

from testfleet.hub.coverage.answers import Answers, agent_payload, cancel_message, stop_message
from testfleet.hub.coverage.connections import ProbeConnection, ProbeConnections
from testfleet.hub.coverage.folding import finish, fold
from testfleet.hub.coverage.forward import Forwarding
from testfleet.hub.coverage.live import LiveBoard, LiveSession
from testfleet.hub.coverage.parts import CheckedPart, Refusal
from testfleet.hub.coverage.targets import Target, resolve
from testfleet.hub.errors import ApiError
from testfleet.protocol.coverage import (
    AddAgentSessionData,
    AgentSessionDataPayload,
    CancelAllAgentSessions,
    CoverDataPart,
    ProbeAck,
    ProbeMessageModel,
    SessionCancelled,
    SessionChanged,
    SessionFinished,
    SessionsCancelled,
    SessionsFinished,
    SessionStarted,
    StartAgentSession,
    StopAllAgentSessions,
)
from testfleet.protocol.coverage_api import (
    ActionModel,
    AddSessionData,
    CancelAllSessions,
    CancelSession,
    StartNewSession,
    StopAllSessions,
    StopSession,
)
from testfleet.protocol.wire import utcnow
from testfleet.store import coverage as coverage_store
from testfleet.store import coverage_data
from testfleet.store.coverage_codec import encode_part
from testfleet.store.coverage_records import SessionRecord
from testfleet.store.db import Store

_log = logging.getLogger(__name__)
OPEN = ("active", "stopping")


def session_not_found(session_id: str) -> ApiError:
    """404 for a session the hub does not know."""
    return ApiError(404, "session_not_found", f"session not found: {session_id!r}")


class CoverageService:
    """Sessions on the probes connected here."""

    def __init__(
        self,
        *,
        store: Store,
        connections: ProbeConnections,
        live: LiveBoard,
        answer_timeout: float = 10.0,
        stop_timeout: float = 30.0,
    ) -> None:
        self._store = store
        self._connections = connections
        self.live = live
        self._answer_timeout = answer_timeout
        self._stop_timeout = stop_timeout
        self._answers = Answers()
        self.forwarding: Forwarding | None = None
        """Set by the hub when several hubs share the store."""
        self._finishing: dict[str, asyncio.Future[SessionRecord]] = {}
        self._background: set[asyncio.Future[Any]] = set()

    # ---- the admin's side ----------------------------------------------------------------

    async def dispatch(
        self, target: Target, action: ActionModel, who: str, *, here: bool = False
    ) -> list[SessionRecord]:
        """Carry out one admin action (START, STOP, CANCEL, STOP_ALL, CANCEL_ALL, or
        ADD_SESSION_DATA) on the target's probes; returns the sessions it concerned. Probes
        all connected to another hub get it through that hub (unless `here`)."""
        if not here and self.forwarding is not None:
            hub = await self.forwarding.hub_for(target, action)
            if hub is not None:
                return await self.forwarding.hand_over(hub, target, action, who)
        match action:
            case StartNewSession():
                sessions = [await self._start(target, action, who)]
            case StopSession(payload=payload):
                session = await self._open_session(target, payload.sessionId)
                sessions = await self._stop([session], target)
            case CancelSession(payload=payload):
                session = await self._open_session(target, payload.sessionId)
                sessions = await self._cancel([session], target)
            case StopAllSessions():
                sessions = await self._stop(await self._open_of(target), target, every=True)
            case CancelAllSessions():
                sessions = await self._cancel(await self._open_of(target), target, every=True)
            case AddSessionData(payload=payload):
                session = await self._open_session(target, payload.sessionId)
                message = AddAgentSessionData(
                    payload=AgentSessionDataPayload(sessionId=session.id, data=payload.data)
                )
                for connection in self._local(session.agents):
                    connection.send(message)
                sessions = [session]
        return sessions

    async def _start(self, target: Target, action: StartNewSession, who: str) -> SessionRecord:
        build, probes = await resolve(self._store, self._connections, target)
        payload = action.payload
        session_id = payload.sessionId or uuid.uuid4().hex
        created = await self._store.write(
            coverage_store.create_session,
            session_id=session_id,
            build=build,
            test_type=payload.testType,
            test_name=payload.testName,
            is_realtime=payload.isRealtime,
            is_global=payload.isGlobal,
            agents=[p.agent_id for p in probes],
            scope="agent" if target.agent_id is not None else "app",
            started_by=who,
            job_id=payload.jobId,
            now=utcnow(),
        )
        if isinstance(created, coverage_store.SessionRefused):
            raise ApiError(created.status, created.code, created.message)
        if created.is_realtime:
            self.live.keep(created.id, LiveSession())
        message = StartAgentSession(payload=agent_payload(created))
        waits = [
            self._answers.expect("started", created.id, c.agent_id)
            for c in self._local(created.agents)
        ]
        for connection in self._local(created.agents):
            connection.send(message)
        await self._answers.settle(waits, self._answer_timeout)
        return created

    async def _open_session(self, target: Target, session_id: str) -> SessionRecord:
        session = await self._store.read(coverage_store.get_session, session_id)
        if session is None or (
            target.agent_id is not None and target.agent_id not in session.agents
        ):
            raise session_not_found(session_id)
        if target.app is not None and session.app != target.app:
            raise session_not_found(session_id)
        if not session.open:
            raise ApiError(409, "session_closed", f"session {session_id!r} is {session.state}")
        return session

    async def _open_of(self, target: Target) -> list[SessionRecord]:
        sessions = await self._store.read(
            coverage_store.list_sessions,
            app=target.app,
            agent_id=target.agent_id,
            states=OPEN,
            limit=10_000,
        )
        if target.build is not None:
            sessions = [s for s in sessions if s.version == target.build]
        return sessions

    async def _stop(
        self, sessions: list[SessionRecord], target: Target, *, every: bool = False
    ) -> list[SessionRecord]:
        for session in sessions:
            await self._store.write(
                coverage_store.set_session_state, session.id, "stopping", only_from=OPEN
            )
        waits = []
        for session in sessions:
            for connection in self._local(session.agents):
                waits.append(self._answers.expect("finished", session.id, connection.agent_id))
        self._send_each(sessions, target, every, StopAllAgentSessions(), stop_message)
        await self._answers.settle(waits, self._stop_timeout)
        return [await self.finish(s.id) for s in sessions]

    async def _cancel(
        self, sessions: list[SessionRecord], target: Target, *, every: bool = False
    ) -> list[SessionRecord]:
        now = utcnow()
        waits = []
        for session in sessions:
            await self._store.write(coverage_data.discard_session_data, session.id, now)
            self.live.forget(session.id)
            for connection in self._local(session.agents):
                waits.append(self._answers.expect("cancelled", session.id, connection.agent_id))
        self._send_each(sessions, target, every, CancelAllAgentSessions(), cancel_message)
        await self._answers.settle(waits, self._answer_timeout)
        return [await self._session(s.id) for s in sessions]

    def _send_each(
        self,
        sessions: list[SessionRecord],
        target: Target,
        every: bool,
        to_all: BaseModel,
        one: Callable[[str], BaseModel],
    ) -> None:
        """STOP_ALL / CANCEL_ALL to the probes addressed, the single message to the others."""
        everyone: set[str] = set()
        if every:
            agents = {a for s in sessions for a in s.agents}
            if target.agent_id is not None:
                agents = {target.agent_id}
            for connection in self._local(agents):
                connection.send(to_all)
                everyone.add(connection.agent_id)
        for session in sessions:
            for connection in self._local(session.agents):
                if connection.agent_id not in everyone:
                    connection.send(one(session.id))

    async def finish(self, session_id: str) -> SessionRecord:
        """Fold a stopping session's parts into its coverage, once (concurrent callers wait
        for the same)."""
        task = self._finishing.get(session_id)
        if task is None:
            task = asyncio.ensure_future(self._finish(session_id))
            self._finishing[session_id] = task
            task.add_done_callback(lambda _: self._finishing.pop(session_id, None))
        return await asyncio.shield(task)

    async def _finish(self, session_id: str) -> SessionRecord:
        session = await self._session(session_id)
        if session.open:
            covered = await finish(self._store, session, utcnow())
            _log.info(
                "coverage session %s finished: %d/%d probes", session_id, covered, session.total
            )
        self.live.forget(session_id)
        return await self._session(session_id)

    async def _session(self, session_id: str) -> SessionRecord:
        session = await self._store.read(coverage_store.get_session, session_id)
        if session is None:
            raise session_not_found(session_id)
        return session

    async def covered(self, session: SessionRecord) -> int:
        """A session's covered probes now: live, stored, or folded from its parts."""
        live = self.live.session(session.id)
        if live is not None:
            return live.covered
        if not session.open:
            return session.covered
        return (await fold(self._store, [session])).covered

    # ---- the probes' side ----------------------------------------------------------------

    async def probe_ready(self, connection: ProbeConnection, held: list[str]) -> None:
        """A probe (re)connected holding `held`: start what it misses, stop or cancel what
        the hub has ended meanwhile."""
        sessions = await self._store.read(
            coverage_store.list_sessions, build_id=connection.build.id, states=OPEN, limit=10_000
        )
        known = {s.id for s in sessions}
        for session in sessions:
            member = connection.agent_id in session.agents
            if session.state == "active" and (member or session.scope == "app"):
                if not member:
                    await self._store.write(
                        coverage_store.add_session_agent, session.id, connection.agent_id
                    )
                if session.id not in held:
                    connection.send(StartAgentSession(payload=agent_payload(session)))
            elif session.state == "stopping" and member:
                if session.id in held:
                    connection.send(stop_message(session.id))
                else:
                    self._later(self.finish(session.id))
        for session_id in held:
            if session_id not in known:
                connection.send(cancel_message(session_id))

    def probe_gone(self, connection: ProbeConnection) -> None:
        """A probe disconnected: nobody waits for its answers any more."""
        self._answers.gone(connection.agent_id)

    async def handle(
        self, connection: ProbeConnection, message: CheckedPart | ProbeMessageModel | Refusal
    ) -> None:
        """One message of a probe, handled and acknowledged (or refused)."""
        if isinstance(message, Refusal):
            connection.send(message.error())
            return
        if isinstance(message, CheckedPart):
            refusal = await self._part(connection, message)
            if refusal is not None:
                connection.send(refusal.error())
                return
        elif isinstance(message, CoverDataPart):
            return  # parsed without a layout: cannot happen after registration
        else:
            await self._answer(connection, message)
        seq = getattr(message, "seq", None)
        if seq is not None:
            connection.send(ProbeAck(seq=seq))

    async def _part(self, connection: ProbeConnection, part: CheckedPart) -> Refusal | None:
        blob = encode_part(part.data)
        outcome = await self._store.write(
            coverage_data.add_part,
            part.session_id,
            connection.build.id,
            blob,
            len(part.data),
            utcnow(),
        )
        if outcome != "stored":
            reason = {
                "unknown": f"session not found: {part.session_id!r}",
                "closed": f"session {part.session_id!r} has finished or was cancelled",
                "other_build": f"session {part.session_id!r} belongs to another build",
            }[outcome]
            return Refusal(f"session_{outcome}", reason, location="/sessionId", seq=part.seq)
        live = self.live.session(part.session_id)
        if live is not None:
            live.add(part.data)
            self.live.bump(part.session_id)
        return None

    async def _answer(self, connection: ProbeConnection, message: ProbeMessageModel) -> None:
        agent = connection.agent_id
        match message:
            case SessionStarted(sessionId=session_id):
                self._answers.resolve("started", session_id, agent)
            case SessionChanged(sessionId=session_id, probeCount=count):
                live = self.live.session(session_id)
                if live is not None:
                    live.changed(agent, count)
                    self.live.bump(session_id)
            case SessionFinished(sessionId=session_id):
                await self._finished(agent, [session_id])
            case SessionsFinished(ids=ids):
                await self._finished(agent, ids)
            case SessionCancelled(sessionId=session_id):
                self._answers.resolve("cancelled", session_id, agent)
            case SessionsCancelled(ids=ids):
                for session_id in ids:
                    self._answers.resolve("cancelled", session_id, agent)

    async def _finished(self, agent: str, ids: Iterable[str]) -> None:
        for session_id in ids:
            if not self._answers.resolve("finished", session_id, agent):
                session = await self._store.read(coverage_store.get_session, session_id)
                if session is not None and session.state == "stopping":
                    self._later(self.finish(session_id))

    # ---- waiting for answers -------------------------------------------------------------

    def _local(self, agents: Iterable[str]) -> list[ProbeConnection]:
        found = (self._connections.get(a) for a in agents)
        return [c for c in found if c is not None]

    def _later(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
