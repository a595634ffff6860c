"""Admin actions for probes connected to another hub (several hubs on one PostgreSQL).

The hub that gets the request stores the action (`store/coverage_actions.py`), notifies the
probes' hub through the relay, and waits for the result; that hub carries the action out as
if it had been asked itself. Sessions whose probes are spread over several hubs are not
handed over: the hub asked does what it can with the probes it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from testfleet.hub.coverage.connections import ProbeConnections
from testfleet.hub.coverage.targets import Target
from testfleet.hub.errors import ApiError
from testfleet.hub.relay import Relay
from testfleet.protocol.coverage_api import ACTIONS, ActionModel, StartNewSession
from testfleet.protocol.wire import utcnow
from testfleet.store import coverage as coverage_store
from testfleet.store import coverage_actions
from testfleet.store.addresses import hub as to_hub
from testfleet.store.coverage_records import SessionRecord
from testfleet.store.db import Store

_log = logging.getLogger(__name__)
KIND = "coverage_action"
WAIT = 45.0
"""How long the asking hub waits for the other hub's result (a STOP may take 30 s)."""

POLL = 0.5
"""A notification is a wake-up that may be lost (relay.py): each hub also looks for actions
handed to it this often."""

RunHere = Callable[[Target, ActionModel, str], Awaitable[list[SessionRecord]]]


class Forwarding:
    """Hands actions over to the hub that holds their probes, and carries out those handed
    to this hub."""

    def __init__(
        self,
        *,
        server_id: str,
        store: Store,
        relay: Relay,
        connections: ProbeConnections,
        run_here: RunHere,
    ) -> None:
        self._server_id = server_id
        self._store = store
        self._relay = relay
        self._connections = connections
        self._run_here = run_here
        self._running: set[asyncio.Task[None]] = set()
        relay.handle(KIND, self._received)
        relay.on_connect(self._catch_up)

    async def hub_for(self, target: Target, action: ActionModel) -> str | None:
        """The other hub that holds every probe the action concerns; None to act here."""
        agents = await self._agents(target, action)
        if not agents or any(self._connections.get(a) is not None for a in agents):
            return None
        probes = [
            p
            for agent in agents
            for p in await self._store.read(coverage_store.list_probes, agent_id=agent)
        ]
        hubs = {p.hub for p in probes}
        if len(hubs) == 1 and self._server_id not in hubs:
            return hubs.pop()
        return None

    async def _agents(self, target: Target, action: ActionModel) -> list[str]:
        payload = getattr(action, "payload", None)
        session_id = getattr(payload, "sessionId", None)
        if session_id is not None and not isinstance(action, StartNewSession):
            session = await self._store.read(coverage_store.get_session, session_id)
            return session.agents if session is not None else []
        if target.agent_id is not None:
            return [target.agent_id]
        probes = await self._store.read(coverage_store.list_probes, app=target.app)
        if target.build is not None:
            probes = [p for p in probes if p.version == target.build]
        if not probes:
            return []
        newest = max(probes, key=lambda p: p.connected_at)
        return [p.agent_id for p in probes if p.build_id == newest.build_id]

    async def hand_over(
        self, hub: str, target: Target, action: ActionModel, who: str
    ) -> list[SessionRecord]:
        """Have `hub` carry out the action; its sessions, or its error as ours."""
        action_id = await self._store.write(
            coverage_actions.add_action,
            hub=hub,
            target=asdict(target),
            action=action.model_dump(mode="json"),
            requested_by=who,
            now=utcnow(),
        )
        await self._relay.publish(KIND, action_id, to=to_hub(hub))
        deadline = time.monotonic() + WAIT
        pause = 0.02
        while time.monotonic() < deadline:
            record = await self._store.read(coverage_actions.get_action, action_id)
            if record is not None and record.state in ("done", "failed"):
                return await self._outcome(record.state, record.result or {})
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.25)
        raise ApiError(
            503,
            "hub_unavailable",
            f"hub {hub}, which holds the probes, did not carry out the action within "
            f"{WAIT:g} s (it may still)",
        )

    async def _outcome(self, state: str, result: dict[str, Any]) -> list[SessionRecord]:
        if state == "failed":
            raise ApiError(int(result["status"]), str(result["code"]), str(result["message"]))
        sessions = []
        for session_id in result["sessions"]:
            session = await self._store.read(coverage_store.get_session, session_id)
            if session is not None:
                sessions.append(session)
        return sessions

    async def _received(self, action_id: int) -> bool:
        # Not in the relay's order: a STOP may take 30 s, and jobs' notifications wait behind.
        task = asyncio.create_task(self._carry_out(action_id), name=f"coverage-action-{action_id}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return True

    async def _carry_out(self, action_id: int) -> None:
        record = await self._store.write(coverage_actions.claim_action, action_id, self._server_id)
        if record is None:
            return  # another hub's, or carried out already
        _log.info("carrying out coverage action %d of another hub", action_id)
        try:
            action = ACTIONS.validate_python(record.action)
            sessions = await self._run_here(Target(**record.target), action, record.requested_by)
        except ApiError as error:
            result = {"status": error.status, "code": error.code, "message": error.message}
            await self._store.write(coverage_actions.end_action, action_id, "failed", result)
        except Exception as error:
            _log.exception("coverage action %d failed", action_id)
            result = {"status": 500, "code": "internal_error", "message": repr(error)}
            with contextlib.suppress(Exception):
                await self._store.write(coverage_actions.end_action, action_id, "failed", result)
        else:
            done = {"sessions": [s.id for s in sessions]}
            await self._store.write(coverage_actions.end_action, action_id, "done", done)

    async def watch(self) -> None:
        """Carry out the actions handed to this hub whose notification did not come."""
        while True:
            await asyncio.sleep(POLL)
            try:
                await self._catch_up()
            except Exception:  # the store is away: next time
                _log.warning("cannot look for coverage actions", exc_info=True)

    async def _catch_up(self) -> None:
        for action_id in await self._store.read(coverage_actions.pending_actions, self._server_id):
            await self._received(action_id)
