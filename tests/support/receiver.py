"""A webhook receiver on loopback for tests: records every request; some paths answer 500,
some hang until the test ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.support.processes import free_port
from tests.support.served import served


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What the receiver got so far, and where it listens."""

    port: int
    requests: list[Received] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        """The URL of `path` on this receiver."""
        return f"http://127.0.0.1:{self.port}{path}"

    def to(self, path: str) -> list[Received]:
        """The requests made to `path`."""
        return [r for r in self.requests if r.path == path]


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[Receiver]:
    """Run a receiver: /ok answers 200, /fail 500, /gone 410, /hang never (until the end)."""
    receiver = Receiver(free_port())

    async def endpoint(request: Request) -> Any:
        receiver.requests.append(
            Received(request.url.path, dict(request.headers), await request.body())
        )
        path = request.url.path
        if path == "/hang":
            await receiver.release.wait()
        status = {"/fail": 500, "/gone": 410}.get(path, 200)
        return PlainTextResponse("ok" if status == 200 else "no", status_code=status)

    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=["POST"])])
    async with served(app, receiver.port):
        try:
            yield receiver
        finally:
            receiver.release.set()
