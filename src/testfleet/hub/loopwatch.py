"""Event-loop stalls made visible: a task that wakes every `TICK` notes how late it woke.

A late wake-up means something held the loop (fleet-sized work, a slow synchronous call):
every request and connection waited that long. The lag goes to the Prometheus histogram
`testfleet_event_loop_lag_seconds`, and a stall over `WARN_AFTER` is logged.
"""

from __future__ import annotations

import asyncio
import logging
import time

from testfleet.hub.metrics import HubMetrics

_log = logging.getLogger(__name__)
TICK = 0.1
WARN_AFTER = 0.1  # seconds of lag that are logged as a stall


class LoopWatch:
    """Measures the event loop's lag, until cancelled."""

    def __init__(self, metrics: HubMetrics) -> None:
        self._metrics = metrics
        self.worst = 0.0
        """The worst lag seen (seconds)."""

    async def run(self) -> None:
        """Wake every TICK and measure how late."""
        while True:
            expected = time.perf_counter() + TICK
            await asyncio.sleep(TICK)
            lag = max(0.0, time.perf_counter() - expected)
            self._metrics.loop_lag.observe(lag)
            self.worst = max(self.worst, lag)
            if lag > WARN_AFTER:
                _log.warning("the event loop stalled for %.0f ms", lag * 1000)
