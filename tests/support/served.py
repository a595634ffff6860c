"""An ASGI app served by uvicorn on loopback, inside the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.types import ASGIApp


@contextlib.asynccontextmanager
async def served(app: ASGIApp, port: int, **settings: Any) -> AsyncIterator[None]:
    """Serve `app` on 127.0.0.1:`port` until the block ends (waits up to 5 s for it to
    start); `settings` go to uvicorn's Config (e.g. its `http` and `ws` protocols)."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **settings
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
