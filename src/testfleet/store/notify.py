"""PostgreSQL LISTEN/NOTIFY between hubs sharing one database.

A notification carries a kind and a row id ("task:42"), never the data: the receiver reads
the row from the store. Notifications are a wake-up, not a queue: one sent while a hub's
listening connection was down is lost, so a listener reports every (re)connection and the
hub then catches up from the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

_log = logging.getLogger(__name__)
CHANNEL = "testfleet"
_BACKOFF = (0.2, 5.0)  # first and longest wait between connection attempts

Handler = Callable[[str, int], None]


def notify(conn: Connection, kind: str, row_id: int) -> None:
    """Send `kind:row_id` to every listening hub when the transaction commits."""
    conn.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": CHANNEL, "payload": f"{kind}:{row_id}"},
    )


def parse(payload: str) -> tuple[str, int] | None:
    """`kind:row_id` as a pair, or None for anything else."""
    kind, _, number = payload.partition(":")
    if not kind or not number.isdigit():
        return None
    return kind, int(number)


class Listener:
    """One connection LISTENing on the channel for as long as `run()` runs; reconnects with
    backoff. `on_connect` runs after every (re)connection, once the LISTEN is in place."""

    def __init__(
        self,
        url: str,
        handler: Handler,
        on_connect: Callable[[], Awaitable[None]],
        channel: str = CHANNEL,
    ) -> None:
        self.channel = channel
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.handler = handler
        self.on_connect = on_connect

    async def run(self) -> None:
        """Listen until cancelled."""
        wait = _BACKOFF[0]
        while True:
            try:
                await self._listen_once()
                _log.warning("hub notifications: the connection was lost; connecting again")
                wait = _BACKOFF[0]
            except Exception as error:
                _log.warning("hub notifications: %s; connecting again in %.1f s", error, wait)
            await asyncio.sleep(wait)
            wait = min(wait * 2, _BACKOFF[1])

    async def _listen_once(self) -> None:
        """Connect and listen; returns when the connection is lost."""
        lost = asyncio.Event()
        connection = await asyncpg.connect(self.dsn, timeout=10)
        try:
            connection.add_termination_listener(lambda _conn: lost.set())
            await connection.add_listener(self.channel, self._received)
            await self.on_connect()
            while not lost.is_set():
                try:
                    async with asyncio.timeout(10):
                        await lost.wait()
                except TimeoutError:  # a quiet channel: make sure the server is still there
                    await connection.fetchval("SELECT 1", timeout=10)
        finally:
            if not connection.is_closed():
                connection.terminate()

    def _received(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        parsed = parse(payload)
        if parsed is None:
            _log.warning("hub notifications: ignoring %r", payload)
            return
        self.handler(*parsed)
