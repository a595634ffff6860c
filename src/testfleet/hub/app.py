"""The hub's ASGI application."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from testfleet import __version__
from testfleet.hub.config import HubConfig
from testfleet.hub.errors import install_error_handlers
from testfleet.hub.routes import inventory, jobs, ops, tokens
from testfleet.hub.runtime import Hub
from testfleet.protocol.api import ErrorBody
from testfleet.protocol.version import API_VERSION, API_VERSION_HEADER, SERVER_ID_HEADER
from testfleet.store.db import Store


def create_app(config: HubConfig) -> FastAPI:
    """Build the hub application; the store opens (and migrates) when it starts."""
    config.check()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = await Store.open(config.database_url)
        hub = Hub(config, store)
        app.state.hub = hub
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()
            await store.close()

    app = FastAPI(
        title="testfleet hub",
        version=__version__,
        lifespan=lifespan,
        description="Jobs, devices and agents of a test lab. See docs/api.md.",
    )
    app.state.server_id = config.effective_server_id
    install_error_handlers(app)
    for module in (ops, jobs, inventory, tokens):
        app.include_router(module.router)

    @app.middleware("http")
    async def versions_and_server_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        asked = request.headers.get(API_VERSION_HEADER)
        if asked is not None and asked.strip() != str(API_VERSION):
            response: Response = JSONResponse(
                ErrorBody(
                    code="unsupported_api_version",
                    message=f"the client speaks API version {asked.strip()!r}; this hub speaks "
                    f"version {API_VERSION}",
                    server_id=config.effective_server_id,
                ).model_dump(),
                status_code=400,
            )
        else:
            response = await call_next(request)
        response.headers[SERVER_ID_HEADER] = config.effective_server_id
        route = request.scope.get("route")
        hub = getattr(request.app.state, "hub", None)
        if hub is not None:
            hub.metrics.request_seconds.labels(
                request.method, getattr(route, "path", "unmatched"), str(response.status_code)
            ).observe(time.perf_counter() - started)
        return response

    return app
