"""The hub's ASGI application."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from testfleet import __version__
from testfleet.hub.config import HubConfig
from testfleet.hub.errors import install_error_handlers
from testfleet.hub.routes import coverage, coverage_reports, inventory, jobs, ops, tokens
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
    for module in (ops, jobs, inventory, tokens, coverage, coverage_reports):
        app.include_router(module.router)

    app.add_middleware(ServerHeaders, server_id=config.effective_server_id)
    return app


class ServerHeaders:
    """Plain ASGI middleware (no per-request task, unlike BaseHTTPMiddleware): refuses API
    versions the hub does not speak, names the server in every response, times requests."""

    def __init__(self, app: ASGIApp, server_id: str) -> None:
        self.app = app
        self.server_id = server_id
        self.header = (SERVER_ID_HEADER.lower().encode(), server_id.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        asked = Headers(scope=scope).get(API_VERSION_HEADER)
        if asked is not None and asked.strip() != str(API_VERSION):
            response = JSONResponse(
                ErrorBody(
                    code="unsupported_api_version",
                    message=f"the client speaks API version {asked.strip()!r}; this hub speaks "
                    f"version {API_VERSION}",
                    server_id=self.server_id,
                ).model_dump(),
                status_code=400,
            )
            response.headers[SERVER_ID_HEADER] = self.server_id
            await response(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_header)
        finally:
            app = scope.get("app")
            hub = getattr(app.state, "hub", None) if app is not None else None
            route = scope.get("route")
            if hub is not None:
                hub.metrics.request_seconds.labels(
                    scope["method"], getattr(route, "path", "unmatched"), str(status)
                ).observe(time.perf_counter() - started)
