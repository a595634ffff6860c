"""Serve the hub with uvicorn; on SIGINT/SIGTERM close agent sockets first, then shut down."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import sys
from collections.abc import Callable, Iterator
from types import FrameType

import uvicorn
from fastapi import FastAPI

from testfleet.hub import redact
from testfleet.hub.agents.messages import MAX_FRAME as AGENT_MAX_FRAME
from testfleet.hub.app import create_app
from testfleet.hub.config import HubConfig
from testfleet.hub.coverage.parts import MAX_FRAME as PROBE_MAX_FRAME
from testfleet.hub.paced_reads import PacedHttpToolsProtocol, PacedWebSocketProtocol

_log = logging.getLogger(__name__)
SWITCH_INTERVAL = 0.0005
# A collection of the youngest generation every 50,000 allocations instead of 700: the hub
# allocates fast (requests, tasks, rows) and keeps few cycles, and at the default the
# collector took 7 % of the hub's time under load (docs/performance.md).
GC_THRESHOLDS = (50_000, 50, 100)
WS_PING_INTERVAL = 60.0


class HubServer(uvicorn.Server):
    """uvicorn's server, which on exit also closes agent connections so it need not wait on
    them, and runs the `on_exit` callbacks (e.g. stopping the local agent of `testfleet up`)."""

    def __init__(
        self, config: uvicorn.Config, app: FastAPI, on_exit: list[Callable[[], None]] | None = None
    ) -> None:
        super().__init__(config)
        self.hub_app = app
        self.on_exit = on_exit or []

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does, then move everything allocated so far (modules, the app,
        the store's metadata) out of the collector's sight: it outlives the server anyway."""
        await super().startup(sockets)
        gc.freeze()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """As uvicorn's, but a graceful stop on SIGINT/SIGTERM exits 0 instead of re-raising
        the signal: `testfleet hub` and `testfleet up` stopping on request is a success."""
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        for callback in self.on_exit:
            callback()
        hub = getattr(self.hub_app.state, "hub", None)
        if hub is not None:
            loop = asyncio.get_event_loop()
            loop.call_soon_threadsafe(lambda: loop.create_task(hub.connections.close_all()))
        super().handle_exit(sig, frame)


def build_server(
    config: HubConfig, *, log_level: str = "info", on_exit: list[Callable[[], None]] | None = None
) -> HubServer:
    """A server for `config` (its settings checked; raises ValueError when unsafe)."""
    # Store transactions run in worker threads: a shorter GIL switch interval (default 5 ms)
    # lets a finished transaction hand its result back without waiting a full slice.
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(*GC_THRESHOLDS)
    app = create_app(config)
    server_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level=log_level,
        lifespan="on",
        timeout_graceful_shutdown=5,
        timeout_keep_alive=30,
        # The largest frame any WebSocket takes: a coverage part (65,535 objects) runs to tens
        # of MB. Each endpoint refuses more than its own limit (agents: 4 MiB).
        ws_max_size=max(AGENT_MAX_FRAME, PROBE_MAX_FRAME),
        access_log=False,
        # uvicorn's httptools and websockets-sansio protocols, reading a bounded number of
        # connections per turn of the event loop (a fleet connecting or leaving at once).
        http=PacedHttpToolsProtocol,
        ws=PacedWebSocketProtocol,
        # The hub pings every 60 s (uvicorn's default is 20): agents also heartbeat and ping
        # the hub themselves, and in a fleet of 10,000 pings were most of an idle hub's
        # frames. A browser or instance that vanished without closing is dropped within 80 s.
        ws_ping_interval=WS_PING_INTERVAL,
        backlog=8192,  # a fleet reconnecting at once (the kernel may cap it lower)
    )
    redact.install("uvicorn.error", "uvicorn.access")  # after uvicorn set its loggers up
    return HubServer(server_config, app, on_exit)
