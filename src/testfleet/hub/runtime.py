"""The hub at run time: the store, the config and the services that share them."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from testfleet.hub.agents import AgentRegistry
from testfleet.hub.allocator import DeviceAllocator
from testfleet.hub.config import HubConfig
from testfleet.hub.ingest import TaskIndex
from testfleet.hub.manager import JobManager
from testfleet.hub.metrics import HubMetrics
from testfleet.hub.relay import Relay
from testfleet.hub.signals import Signals
from testfleet.store.db import Store

_log = logging.getLogger(__name__)


class Hub:
    """One hub process's services. The store is the truth; these hold only connections,
    caches and wake-ups."""

    def __init__(self, config: HubConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.server_id = config.effective_server_id
        self.signals = Signals()
        self.metrics = HubMetrics()
        self.task_index = TaskIndex()
        self.agents = AgentRegistry(self)
        self.allocator = DeviceAllocator(self)
        self.jobs = JobManager(self)
        self.relay = Relay(self)
        self._background: list[asyncio.Task[None]] = []
        self.ready = False

    async def start(self) -> None:
        """Start the background services."""
        for name, coroutine in (
            ("jobs", self.jobs.run()),
            ("leases", self.jobs.keep_leases()),
            ("allocator", self.allocator.run()),
            ("agents", self.agents.watch()),
            ("relay", self.relay.run()),
        ):
            self._background.append(asyncio.create_task(coroutine, name=f"hub-{name}"))
        self.ready = True
        _log.info("hub %s started on %s", self.server_id, _safe_url(self.store.url))

    async def stop(self) -> None:
        """Stop everything; running jobs stay running in the store for the next hub."""
        self.ready = False
        await self.jobs.shutdown()
        await self.agents.close_all()
        for task in self._background:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
