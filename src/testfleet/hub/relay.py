"""Notifications between hubs that share the PostgreSQL store.

A hub that must reach an agent connected elsewhere, or a job run elsewhere, sends a
notification naming a row ("task:42", "job:7"); the hub concerned reads the row and acts.
The relay only carries them: the services that send a kind also handle it (`handle`).

Each notification goes to the channel of the hub that must act (`to`: the hub of the task's
agent, the owner of the job, as the sending transaction finds them in the store), or to every
hub when that hub is unknown or the news is for all (`EVERY_HUB`); a hub listens on its own
channel and on the broadcast one (`store/notify.py`), so it reads its own messages only.

- `task:ID`      a task was given to your agent: send it RUN_TASK (delivery);
- `task_stop:ID` stop that task on your agent (delivery);
- `job:ID`       that job's tasks changed (you run it): look again (job news);
- `job_stop:ID`  someone asked to stop that job (you run it) (job news);
- `devices_freed:0` a gateway session freed a device: waiting requests look again (gateway;
  to every hub);
- `dev_command:ID`, `coverage_action:ID` for the hub of an agent or of probes.

A hub acts on notifications one at a time, in the order they came, so a stop never overtakes
the task it stops. Notifications are wake-ups: one lost (a listening connection down, a failed
write) delays, never breaks, because runners look at the store every second and send a task
still pending after a few seconds again, the hub catches up from the store when its listener
connects (`on_connect`), and agents are reconciled when they register. On SQLite there is only
one hub, so nothing is ever sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import Connection

from testfleet.hub.metrics import HubMetrics
from testfleet.store.addresses import Address
from testfleet.store.db import Store
from testfleet.store.notify import BROADCAST, Listener, hub_channel, notify

_log = logging.getLogger(__name__)

Handler = Callable[[int], Awaitable[bool]]
"""Acts on a notification about row `row_id`; False if nothing here concerned it."""

EVERY_HUB: Address | None = None
"""`to` of a notification every hub reads."""


class Relay:
    """Sends notifications to the other hubs and hands those it receives to their handlers."""

    def __init__(self, store: Store, metrics: HubMetrics, server_id: str) -> None:
        self.enabled = store.is_postgres
        self.channel = hub_channel(server_id)
        """This hub's own channel (it also listens on the broadcast one)."""
        self._store = store
        self._metrics = metrics
        self._handlers: dict[str, Handler] = {}
        self._on_connect: list[Callable[[], Awaitable[None]]] = []
        self._inbox: asyncio.Queue[tuple[str, int]] = asyncio.Queue()

    def handle(self, kind: str, handler: Handler) -> None:
        """Call `handler(row_id)` for every `kind` notification received; one that returns
        False is counted as unneeded (it concerned nothing on this hub)."""
        self._handlers[kind] = handler

    def on_connect(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Call `callback()` whenever the listener (re)connects, to catch up from the store."""
        self._on_connect.append(callback)

    async def publish(self, kind: str, row_id: int, *, to: Address | None) -> None:
        """Tell the hub `to` finds for the row (every hub: `EVERY_HUB`), in a transaction of
        its own (a failure is logged: the store's own checks still get there)."""
        try:
            await self._store.write(self.announce, kind, row_id, to=to)
        except Exception:
            _log.exception("cannot notify other hubs of %s %d", kind, row_id)
        else:
            self.sent(kind, to=to)

    def announce(self, conn: Connection, kind: str, row_id: int, *, to: Address | None) -> None:
        """Tell the hub `to` finds for the row (found in this transaction) when the
        transaction of `conn` commits (count it with `sent` once it has)."""
        notify(conn, kind, row_id, to(row_id) if to is not None else None)

    def sent(self, kind: str, count: int = 1, *, to: Address | None) -> None:
        """Count notifications sent (to one hub's channel, or to every hub)."""
        channel = "broadcast" if to is None else "hub"
        self._metrics.relay_messages.labels("sent", kind, channel).inc(count)

    async def run(self) -> None:
        """Listen and act until cancelled (returns at once on SQLite)."""
        if not self.enabled:
            return
        channels = (self.channel, BROADCAST)
        listener = Listener(self._store.url, self._received, self._connected, channels)
        _log.info("hub notifications: listening on %s and %s", *channels)
        async with asyncio.TaskGroup() as group:
            group.create_task(listener.run(), name="relay-listen")
            group.create_task(self._act_in_order(), name="relay-act")

    def _received(self, kind: str, row_id: int, channel: str) -> None:
        if kind not in self._handlers:
            _log.warning("hub notifications: unknown kind %r", kind)
            return
        heard_on = "hub" if channel == self.channel else "broadcast"
        self._metrics.relay_messages.labels("received", kind, heard_on).inc()
        self._inbox.put_nowait((kind, row_id))

    async def _connected(self) -> None:
        for callback in self._on_connect:
            await callback()

    async def _act_in_order(self) -> None:
        while True:
            kind, row_id = await self._inbox.get()
            try:
                if not await self._handlers[kind](row_id):
                    self._metrics.relay_unneeded.labels(kind).inc()
            except Exception:  # the store's own checks get there later
                _log.exception("cannot act on the notification %s:%d", kind, row_id)
