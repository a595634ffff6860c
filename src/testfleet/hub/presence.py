"""This hub's heartbeat in the store, and its housekeeping.

Other hubs judge this hub's agents by it: while it beats, its agents are its business; once it
has been silent for the hub timeout, the others declare its agents lost (unless they have
moved). A hub that stalls (a long GC, SIGSTOP) but comes back within the timeout costs its
agents nothing.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from testfleet.protocol.wire import utcnow
from testfleet.store import hubs as hub_store
from testfleet.store import job_ops
from testfleet.store.db import Store

_log = logging.getLogger(__name__)
KEYS_KEPT = timedelta(days=1)
"""How long an idempotency key keeps giving the same job."""
HOUSEKEEPING_EVERY = 600.0  # seconds


class HubPresence:
    """Writes the hub's heartbeat row every `interval` seconds, until cancelled."""

    def __init__(self, store: Store, server_id: str, interval: float) -> None:
        self._store = store
        self._server_id = server_id
        self._interval = interval

    async def run(self) -> None:
        """Beat, and now and then forget old idempotency keys."""
        loop = asyncio.get_running_loop()
        next_housekeeping = loop.time()
        while True:
            try:
                await self._store.write(hub_store.beat, self._server_id, utcnow())
                if loop.time() >= next_housekeeping:
                    forgotten = await self._store.write(job_ops.forget_keys, utcnow() - KEYS_KEPT)
                    if forgotten:
                        _log.info("forgot %d idempotency keys older than a day", forgotten)
                    next_housekeeping = loop.time() + HOUSEKEEPING_EVERY
            except Exception:  # the store is away: the next beat tries again
                _log.warning("cannot write this hub's heartbeat; trying again", exc_info=True)
            await asyncio.sleep(self._interval)
