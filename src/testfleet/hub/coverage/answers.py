"""The probes' answers the hub waits for (SESSION_STARTED, SESSION_FINISHED, ...), and the
agent actions it sends."""

from __future__ import annotations

import asyncio
import contextlib

from testfleet.protocol.coverage import (
    AgentSessionPayload,
    CancelAgentSession,
    StartSessionPayload,
    StopAgentSession,
)
from testfleet.store.coverage_records import SessionRecord


class Answers:
    """Futures for answers, by (kind, session, probe)."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str, str], asyncio.Future[None]] = {}

    def expect(self, kind: str, session_id: str, agent: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[(kind, session_id, agent)] = future
        return future

    def resolve(self, kind: str, session_id: str, agent: str) -> bool:
        future = self._waiting.pop((kind, session_id, agent), None)
        if future is None:
            return False
        if not future.done():
            future.set_result(None)
        return True

    async def settle(self, waits: list[asyncio.Future[None]], within: float) -> None:
        if waits:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within):
                    await asyncio.gather(*waits)
        for key, future in list(self._waiting.items()):
            if future in waits:
                del self._waiting[key]

    def gone(self, agent: str) -> None:
        """A probe disconnected: its answers will not come."""
        for key, future in list(self._waiting.items()):
            if key[2] == agent and not future.done():
                future.set_result(None)


def agent_payload(session: SessionRecord) -> StartSessionPayload:
    return StartSessionPayload(
        sessionId=session.id,
        testType=session.test_type,
        testName=session.test_name,
        isRealtime=session.is_realtime,
        isGlobal=session.is_global,
    )


def stop_message(session_id: str) -> StopAgentSession:
    return StopAgentSession(payload=AgentSessionPayload(sessionId=session_id))


def cancel_message(session_id: str) -> CancelAgentSession:
    return CancelAgentSession(payload=AgentSessionPayload(sessionId=session_id))
