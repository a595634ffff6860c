"""Noticing lost agents: no heartbeat, a dropped socket not re-made, or a dead hub's agent.

A lost agent goes offline with its devices, and its open tasks end `incomplete` (their jobs'
runners decide about retries).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

from sqlalchemy import Connection

from testfleet.hub.agents.connections import Connections
from testfleet.hub.jobs.news import JobNews
from testfleet.protocol.wire import utcnow
from testfleet.store import agent_ops
from testfleet.store import agents as agent_store
from testfleet.store.db import Store
from testfleet.store.records import AgentRecord

_log = logging.getLogger(__name__)


class LivenessWatch:
    """Watches the agents connected here, and (through the store) those of other hubs."""

    def __init__(
        self,
        *,
        server_id: str,
        heartbeat_interval: float,
        agent_timeout: float,
        store: Store,
        connections: Connections,
        news: JobNews,
    ) -> None:
        self._server_id = server_id
        self._tick = min(0.5, heartbeat_interval / 2)
        self._timeout = agent_timeout
        self._store = store
        self._connections = connections
        self._news = news
        self._store_back_at = float("-inf")
        """When the store last came back after an outage (monotonic): silences that began
        during an outage are judged from then, not from before it."""
        self._store_failing = False

    async def watch(self) -> None:
        """Look every tick, until cancelled."""
        last_store_check = 0.0
        while True:
            await asyncio.sleep(self._tick)
            try:
                last_store_check = await self.look(last_store_check)
            except Exception:  # the store is away, say: the next pass tries again
                if not self._store_failing:
                    _log.exception("watching agents failed; trying again")

    async def look(self, last_store_check: float) -> float:
        """One look at the agents; returns when the store was last checked."""
        now = time.monotonic()
        for connection in self._connections:
            if connection.inbox.full:  # the hub is behind on its events: it is not silent
                connection.last_seen = now
                continue
            silent = now - connection.last_seen
            if silent > self._timeout:
                self._connections.drop(connection, lost=True)
                await connection.close(1001)
                reason = f"no heartbeat for {silent:.1f} s"
                await self.mark_lost(connection.agent_id, reason, _wall_ago(silent))
        if self._store_failing:
            return await self._check_store(now)
        for agent_id, since in list(self._connections.disconnected_at.items()):
            if now - max(since, self._store_back_at) > self._timeout:
                # It may have registered again while an earlier agent was being marked lost.
                if self._connections.disconnected_at.pop(agent_id, None) is None:
                    continue
                await self.mark_lost(
                    agent_id,
                    f"connection closed and not re-made within {self._timeout:g} s",
                    _wall_ago(now - since),
                )
        if now - last_store_check >= self._timeout / 2:
            return await self._check_store(now)
        return last_store_check

    async def _check_store(self, now: float) -> float:
        """Sync with the store; note when it fails and when it comes back."""
        try:
            await self._sync_with_store(judge=now - self._store_back_at > 2 * self._timeout)
        except Exception:
            if not self._store_failing:
                _log.warning("the store is away: no agent is declared lost until it is back")
            self._store_failing = True
            raise
        if self._store_failing:
            self._store_failing = False
            self._store_back_at = time.monotonic()
            _log.info("the store is back; agents' silences are judged from now")
        return now

    async def _sync_with_store(self, *, judge: bool) -> None:
        """Write when local agents were last heard of; with `judge`, mark stale agents of any
        hub lost (not right after an outage: their hubs could not write either)."""
        wall = utcnow()
        seen = [c.agent_id for c in self._connections if not c.closed]
        cutoff = wall - timedelta(seconds=self._timeout * 2)

        def work(conn: Connection) -> list[AgentRecord]:
            agent_store.touch_agents(conn, seen, wall)
            return agent_store.stale_agents(conn, cutoff) if judge else []

        for agent in await self._store.write(work):
            if agent.id in self._connections:
                continue
            since = agent.last_seen.isoformat() if agent.last_seen else "ever"
            await self.mark_lost(agent.id, f"not heard from since {since}", agent.last_seen or wall)

    async def mark_lost(self, agent_id: int, reason: str, heard_until: datetime) -> None:
        """The agent is gone: offline with its devices; its open tasks end incomplete.

        `heard_until` is when this hub last knew it alive: an agent that registered again
        since (here or with another hub) is not lost.
        """
        if agent_id in self._connections:
            return  # it came back in the meantime
        now = utcnow()
        heard_after = now - timedelta(seconds=self._timeout * 2)
        lost = await self._store.write(
            agent_ops.lose_agent, agent_id, reason, now, self._server_id, heard_after, heard_until
        )
        if lost is None:
            _log.info("agent %d is connected again (here or to another hub)", agent_id)
            return
        _log.warning("%s (%d open task(s) incomplete)", lost.reason, len(lost.tasks))
        for job_id in {task.job_id for task in lost.tasks}:
            await self._news.changed(job_id)


def _wall_ago(seconds: float) -> datetime:
    """The wall-clock time `seconds` ago."""
    return utcnow() - timedelta(seconds=seconds)
