"""A lean WebDriver command load: each session one keep-alive HTTP/1.1 connection, one command
in flight at a time (no pipelining), the answers parsed with httptools. Its cost per command is a
small fraction of a general client's (aiohttp's ClientSession costs about as much per request as
the hub it measures), so on a small machine the figure is the proxy's, not the load generator's.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools


@dataclass
class Tally:
    """Commands answered so far."""

    ok: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


class _Connection(asyncio.Protocol):
    """One session's connection: send a request, wait for its whole answer, again."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.answered: asyncio.Future[int] | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.answered is not None and not self.answered.done():
            self.answered.set_exception(ConnectionError("the connection closed"))
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        if self.answered is not None and not self.answered.done():
            self.answered.set_result(self.parser.get_status_code())

    async def request(self, raw: bytes) -> int:
        """Send one whole request and wait for its status."""
        assert self.transport is not None
        self.answered = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.answered


def get_request(base: str, path: str) -> bytes:
    """The bytes of a keep-alive GET of `path` under `base` (http://host:port/prefix)."""
    parts = urlsplit(base)
    return (
        f"GET {parts.path.rstrip('/')}{path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()


async def run(base: str, sessions: list[str], seconds: float, tally: Tally) -> float:
    """GET `/session/{id}/title` in a loop for each session until `seconds` pass; the time taken."""
    parts = urlsplit(base)
    loop = asyncio.get_running_loop()
    stop = time.perf_counter() + seconds

    async def one(session: str) -> None:
        raw = get_request(base, f"/session/{session}/title")
        transport, connection = await loop.create_connection(
            _Connection, parts.hostname, parts.port
        )
        try:
            while time.perf_counter() < stop:
                status = await connection.request(raw)
                tally.statuses[status] = tally.statuses.get(status, 0) + 1
                if status == 200:
                    tally.ok += 1
                else:
                    tally.errors += 1
        finally:
            transport.close()

    started = time.perf_counter()
    await asyncio.gather(*(one(session) for session in sessions))
    return time.perf_counter() - started
