"""The WebDriver gateway: Selenium and Appium clients drive the farm's devices through the hub.

`GatewayService` puts the parts together; `gateway_path` says which requests are its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from prometheus_client import CollectorRegistry

from testfleet.hub.allocator import DeviceAllocator
from testfleet.hub.config import HubConfig
from testfleet.hub.gateway.activity import CommandLog
from testfleet.hub.gateway.creator import SessionCreator, Timeouts
from testfleet.hub.gateway.handler import Gateway, gateway_path
from testfleet.hub.gateway.keeper import SessionKeeper
from testfleet.hub.gateway.metrics import GatewayMetrics
from testfleet.hub.gateway.proxy import NodeClient
from testfleet.hub.gateway.sessions import SessionEnder, SessionRoutes
from testfleet.hub.gateway.status import GridStatus
from testfleet.hub.relay import EVERY_HUB, Relay
from testfleet.store.db import Store

__all__ = ["GatewayService", "gateway_path"]
FREED = "devices_freed"
"""Relay kind: a gateway session freed a device on some hub; waiting requests look again."""


class GatewayService:
    """The gateway of one hub: its HTTP face (`gateway`), what ends sessions (`ender`, also
    for the sessions API) and its background loops (`loops`)."""

    def __init__(
        self,
        config: HubConfig,
        store: Store,
        allocator: DeviceAllocator,
        server_id: str,
        ready: Callable[[], bool],
        relay: Relay,
        registry: CollectorRegistry,
    ) -> None:
        self.metrics = GatewayMetrics(registry, lambda: allocator.waiting)
        self.nodes = NodeClient()
        self.log = CommandLog(store)
        self.routes = SessionRoutes(store)
        self.ender = SessionEnder(store, self.nodes, self.routes, self.log)
        self.ender.on_freed.append(allocator.freed)
        self._relay = relay
        self._told: set[asyncio.Task[None]] = set()
        if relay.enabled:  # a device freed here may serve a request waiting on another hub
            self.ender.on_freed.append(self._tell_other_hubs)

            async def freed_elsewhere(_: int) -> bool:
                waiting = allocator.waiting
                allocator.freed()
                return waiting > 0

            relay.handle(FREED, freed_elsewhere)
        timeouts = Timeouts(
            request=config.session_request_timeout,
            create=config.session_create_timeout,
            idle_default=config.session_idle_timeout,
            idle_max=config.session_idle_max,
        )
        creator = SessionCreator(
            store=store,
            allocator=allocator,
            nodes=self.nodes,
            routes=self.routes,
            ender=self.ender,
            log=self.log,
            timeouts=timeouts,
            server_id=server_id,
            metrics=self.metrics,
        )
        self.keeper = SessionKeeper(
            store=store,
            nodes=self.nodes,
            routes=self.routes,
            ender=self.ender,
            abandon_after=timeouts.request + timeouts.create + 60.0,
            keep_history=config.session_history_days * 86400,
        )
        self.gateway = Gateway(
            store=store,
            auth_enabled=config.auth_enabled,
            creator=creator,
            routes=self.routes,
            ender=self.ender,
            nodes=self.nodes,
            log=self.log,
            metrics=self.metrics,
            status=GridStatus(store, server_id, ready, lambda: allocator.waiting),
        )

    def _tell_other_hubs(self) -> None:
        task = asyncio.create_task(self._relay.publish(FREED, 0, to=EVERY_HUB))
        self._told.add(task)
        task.add_done_callback(self._told.discard)

    def loops(self) -> dict[str, Coroutine[Any, Any, None]]:
        """The background loops to start: name -> coroutine."""
        return {"gateway-log": self.log.run(), "gateway-keeper": self.keeper.run()}

    async def close(self) -> None:
        """Close the pooled connections to nodes."""
        await self.nodes.close()
