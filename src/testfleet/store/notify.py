"""PostgreSQL LISTEN/NOTIFY between hubs sharing one database.

A notification carries a kind and a row id ("task:42"), never the data: the receiver reads
the row from the store. Notifications are a wake-up, not a queue: one sent while a hub's
listening connection was down is lost, so a listener reports every (re)connection and the
hub then catches up from the store.

Each hub listens on a channel of its own (`hub_channel`, derived from its server id) and on
the broadcast channel `BROADCAST`. A notification goes to the channel of the hub that must
act, which the sending transaction looks up in the store (the hub of a task's agent, the
owner of a job: `store/addresses.py`); one whose hub the store does not know goes to every
hub, so no wake-up is lost for want of an address.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from sqlalchemy import ColumnElement, Connection, String, func, literal, select
from sqlalchemy.engine import make_url

_log = logging.getLogger(__name__)
BROADCAST = "testfleet"
"""The channel every hub listens on (the one channel of hubs before per-hub channels)."""
_PREFIX = "testfleet_hub_"
_DIGITS = 16  # of the md5 of the server id: 30 bytes in all, well within PostgreSQL's 63
_BACKOFF = (0.2, 5.0)  # first and longest wait between connection attempts

Handler = Callable[[str, int, str], None]
"""Called with the kind, the row id and the channel of each notification heard."""


def hub_channel(server_id: str) -> str:
    """The channel of hub `server_id`: a valid identifier of 30 bytes whatever the id holds
    (`channel_of` computes the same in SQL)."""
    return _PREFIX + hashlib.md5(server_id.encode(), usedforsecurity=False).hexdigest()[:_DIGITS]


def channel_of(hub: ColumnElement[str | None]) -> ColumnElement[str]:
    """SQL: the channel of the hub `hub` names; the broadcast channel when it is NULL."""
    digest = func.left(func.md5(hub), _DIGITS)
    return func.coalesce(literal(_PREFIX, String) + digest, literal(BROADCAST, String))


def notify(
    conn: Connection, kind: str, row_id: int, hub: ColumnElement[str | None] | None = None
) -> None:
    """Send `kind:row_id` when the transaction commits: to the hub `hub` names (SQL, e.g. a
    lookup of `store/addresses.py`, evaluated in this transaction), to every hub when it is
    None or NULL."""
    payload = literal(f"{kind}:{row_id}", String)
    if hub is None:
        conn.execute(select(func.pg_notify(literal(BROADCAST, String), payload)))
    else:
        conn.execute(select(func.pg_notify(channel_of(hub), payload)))


def parse(payload: str) -> tuple[str, int] | None:
    """`kind:row_id` as a pair, or None for anything else."""
    kind, _, number = payload.partition(":")
    if not kind or not number.isdigit():
        return None
    return kind, int(number)


class Listener:
    """One connection LISTENing on `channels` for as long as `run()` runs; reconnects with
    backoff. `on_connect` runs after every (re)connection, once the LISTENs are in place.
    Notifications of all the channels come in the order they were committed."""

    def __init__(
        self,
        url: str,
        handler: Handler,
        on_connect: Callable[[], Awaitable[None]],
        channels: Sequence[str] = (BROADCAST,),
    ) -> None:
        self.channels = tuple(channels)
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
            for channel in self.channels:
                await connection.add_listener(channel, self._received)
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

    def _received(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        parsed = parse(payload)
        if parsed is None:
            _log.warning("hub notifications: ignoring %r", payload)
            return
        self.handler(*parsed, channel)
