"""Noticing lost agents.

- An agent connected here is lost when it sends nothing for its timeout (it heartbeats), or
  when its socket closed and it did not come back within that time.
- An agent connected to another hub is that hub's business while that hub beats
  (`presence.py`); once the hub has been silent for the hub timeout, its agents are lost,
  unless they have moved to a hub that is alive.
- An agent another hub declared lost while it is connected here and heard from is restored.
- A hub that stalled (its event loop held, the process stopped) judges no silence that began
  while it was not looking, and none while the store was away.

A lost agent goes offline with its devices, and its open tasks end `incomplete` (their jobs'
runners decide about retries).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

from testfleet.hub.agents.connections import AgentConnection, Connections
from testfleet.hub.jobs.news import JobNews
from testfleet.hub.metrics import HubMetrics
from testfleet.hub.signals import Signals
from testfleet.protocol.wire import SetHeartbeat, utcnow
from testfleet.store import agent_ops
from testfleet.store import hubs as hub_store
from testfleet.store.db import Store

_log = logging.getLogger(__name__)
STALL = 1.0  # seconds between two looks that mean the hub was not looking
SWEEP_PART = 250  # connections looked at per tick (a fleet of 10,000 every 4 s)


class LivenessWatch:
    """Watches the agents connected here, and the hubs of the others."""

    def __init__(
        self,
        *,
        server_id: str,
        heartbeat_interval: float,
        agent_timeout: float,
        hub_timeout: float,
        store: Store,
        connections: Connections,
        news: JobNews,
        signals: Signals,
        metrics: HubMetrics,
    ) -> None:
        self._server_id = server_id
        self._tick = min(0.5, heartbeat_interval / 2)
        self._hub_timeout = hub_timeout
        self._store = store
        self._connections = connections
        self._news = news
        self._signals = signals
        self._metrics = metrics
        self._last_look = time.monotonic()
        self._part: list[AgentConnection] = []
        self._part_at = 0
        self._store_back_at = float("-inf")
        """When the store last came back after an outage (monotonic)."""
        self._store_failing = False
        self._started = utcnow()
        self._leftovers_at: float | None = time.monotonic() + 2 * agent_timeout
        """When to look for agents an earlier run of this hub left online that did not come
        back (then None: done)."""

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
        gap, self._last_look = now - self._last_look, now
        if gap > max(STALL, 4 * self._tick):
            _log.warning("this hub was not looking for %.1f s; agents' silences restart", gap)
            for connection in self._connections:  # rare: after a stall
                connection.last_seen = now
            for agent_id in self._connections.disconnected_at:
                self._connections.disconnected_at[agent_id] = now
        await self._judge_silences(now)
        if self._store_failing or now - last_store_check >= 1.0:
            return await self._check_store(now)
        return last_store_check

    def _next_part(self) -> list[AgentConnection]:
        """The next part of the fleet to look at: `SWEEP_PART` connections a tick, so that a
        large fleet is looked at over a few ticks, never all at once."""
        if self._part_at >= len(self._part):
            self._part = list(self._connections)
            self._part_at = 0
        part = self._part[self._part_at : self._part_at + SWEEP_PART]
        self._part_at += SWEEP_PART
        return part

    async def _judge_silences(self, now: float) -> None:
        heartbeat = self._connections.heartbeat_interval()
        for connection in self._next_part():
            if connection.closed:
                continue
            if not heartbeat / 2 <= connection.heartbeat <= heartbeat * 2:
                # The fleet grew (or shrank) since it registered: it heartbeats as often as
                # the fleet's size now calls for; its allowed silence follows.
                connection.send(SetHeartbeat(interval=heartbeat))
                connection.heartbeat = heartbeat
                connection.timeout = self._connections.timeout_for(heartbeat)
                connection.last_seen = max(connection.last_seen, now)  # a fresh window
            if connection.inbox.full:  # the hub is behind on its events: it is not silent
                connection.last_seen = now
                continue
            silent = now - max(connection.last_seen, self._store_back_at)
            if silent > connection.timeout:
                self._connections.drop(connection, lost=True)
                await connection.close(1001, "no heartbeat")
                reason = f"no heartbeat for {silent:.1f} s"
                await self.mark_lost(connection.agent_id, reason, _wall_ago(silent))
        if self._store_failing:
            return
        for agent_id, since in list(self._connections.disconnected_at.items()):
            if now - max(since, self._store_back_at) > self._connections.timeout_of(agent_id):
                # It may have registered again while an earlier agent was being marked lost.
                if self._connections.disconnected_at.pop(agent_id, None) is None:
                    continue
                timeout = self._connections.forget_timeout(agent_id)
                await self.mark_lost(
                    agent_id,
                    f"connection closed and not re-made within {timeout:g} s",
                    _wall_ago(now - since),
                )

    async def _check_store(self, now: float) -> float:
        """Judge other hubs and restore agents; note when the store fails and comes back."""
        try:
            await self._sweep(judge=now - self._store_back_at > self._hub_timeout)
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

    async def _sweep(self, *, judge: bool) -> None:
        """Restore this hub's agents others marked lost; with `judge`, declare lost the agents
        of hubs silent for the hub timeout (not right after an outage: no hub could beat)."""
        restored = await self._store.read(hub_store.marked_lost_here, self._server_id)
        for agent_id in restored:
            if agent_id in self._connections:
                await self._store.write(
                    hub_store.restore_agent, agent_id, self._server_id, utcnow()
                )
                _log.warning("agent %d was declared lost elsewhere; it is here: restored", agent_id)
                self._signals.devices_changed(agent_id)
        if self._leftovers_at is not None and time.monotonic() >= self._leftovers_at:
            await self._leftovers()
            self._leftovers_at = None
        if not judge:
            return
        since = utcnow() - timedelta(seconds=self._hub_timeout)
        for agent_id, hub in await self._store.read(hub_store.agents_of_silent_hubs, since):
            if agent_id in self._connections:
                continue
            reason = f"its hub {hub} has not been heard from for {self._hub_timeout:g} s"
            await self.mark_lost(agent_id, reason, since, hub=hub)

    async def _leftovers(self) -> None:
        """Agents an earlier run of this hub left online that have not come back."""
        after = 0
        while page := await self._store.read(hub_store.online_agents_of, self._server_id, after):
            after = page[-1]
            for agent_id in page:
                if agent_id not in self._connections:
                    reason = "not back since this hub restarted"
                    await self.mark_lost(agent_id, reason, self._started)

    async def mark_lost(
        self, agent_id: int, reason: str, heard_until: datetime, *, hub: str | None = None
    ) -> None:
        """The agent is gone: offline with its devices; its open tasks end incomplete.

        `heard_until` is when it was last known alive (a registration after that means it
        came back); `hub` the hub it was connected to (default: this one).
        """
        if agent_id in self._connections:
            return  # it came back in the meantime
        now = utcnow()
        lost = await self._store.write(
            agent_ops.lose_agent,
            agent_id,
            reason,
            now,
            hub or self._server_id,
            now - timedelta(seconds=self._hub_timeout),
            heard_until,
        )
        if lost is None:
            _log.info("agent %d is connected again (here or to another hub)", agent_id)
            return
        _log.warning("%s (%d open task(s) incomplete)", lost.reason, len(lost.tasks))
        self._metrics.agents_lost.inc()
        self._signals.devices_changed(agent_id)
        for job_id in {task.job_id for task in lost.tasks}:
            await self._news.changed(job_id)


def _wall_ago(seconds: float) -> datetime:
    """The wall-clock time `seconds` ago."""
    return utcnow() - timedelta(seconds=seconds)
