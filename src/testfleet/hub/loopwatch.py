"""Event-loop stalls made visible: a task that wakes every `TICK` notes how late it woke.

A late wake-up means something held the loop (fleet-sized work, a slow synchronous call):
every request and connection waited that long. The lag goes to the Prometheus histogram
`testfleet_event_loop_lag_seconds`, and a stall over `WARN_AFTER` is logged.

The interpreter's garbage collector is one such holder: a collection stops every thread,
and with a large fleet's objects young, one of the older generations can take hundreds of
milliseconds. Each collection's pause goes to `testfleet_gc_pause_seconds` (by generation),
and one over `WARN_AFTER` is logged too, so a stall can be told apart from the hub's own work.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import deque
from typing import Any

from testfleet.hub.metrics import HubMetrics

_log = logging.getLogger(__name__)
TICK = 0.1
WARN_AFTER = 0.1  # seconds of lag (or of a collection) that are logged as a stall


class GcPauses:
    """Times the collector's pauses while installed (a `gc.callbacks` entry).

    The callback runs inside a collection, in whatever thread set it off, so it only
    appends to a deque; `take` hands the pauses over to the event loop's side.
    """

    def __init__(self) -> None:
        self._began = 0.0
        self._pauses: deque[tuple[int, float]] = deque(maxlen=10_000)

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._on_collection)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._on_collection)

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._began = now
        elif self._began:  # a collection under way when the callback was installed: unknown
            self._pauses.append((int(info["generation"]), now - self._began))
            self._began = 0.0

    def take(self) -> list[tuple[int, float]]:
        """The (generation, seconds) of each collection since the last take."""
        taken: list[tuple[int, float]] = []
        while self._pauses:
            taken.append(self._pauses.popleft())
        return taken


class LoopWatch:
    """Measures the event loop's lag and the collector's pauses, until cancelled."""

    def __init__(self, metrics: HubMetrics) -> None:
        self._metrics = metrics
        self.worst = 0.0
        """The worst lag seen (seconds)."""

    async def run(self) -> None:
        """Wake every TICK and measure how late; note the collections since."""
        with GcPauses() as pauses:
            while True:
                expected = time.perf_counter() + TICK
                await asyncio.sleep(TICK)
                lag = max(0.0, time.perf_counter() - expected)
                self._metrics.loop_lag.observe(lag)
                self.worst = max(self.worst, lag)
                if lag > WARN_AFTER:
                    _log.warning("the event loop stalled for %.0f ms", lag * 1000)
                for generation, took in pauses.take():
                    self._metrics.gc_pause.labels(str(generation)).observe(took)
                    if took > WARN_AFTER:
                        _log.warning(
                            "a garbage collection (generation %d) held the hub for %.0f ms",
                            generation,
                            took * 1000,
                        )
