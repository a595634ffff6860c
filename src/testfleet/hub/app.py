"""The hub's ASGI application."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from testfleet import __version__
from testfleet.hub.api_docs import serve_api_docs
from testfleet.hub.config import HubConfig
from testfleet.hub.errors import install_error_handlers
from testfleet.hub.gateway import gateway_path
from testfleet.hub.guard import RequestGuard
from testfleet.hub.routes import (
    artifacts,
    coverage,
    coverage_reports,
    deletions,
    devmode,
    inventory,
    jobs,
    live,
    ops,
    overview,
    schedules,
    session,
    sessions,
    sync,
    testcases,
    testground,
    testplans,
    tokens,
    ui,
    webhooks,
)
from testfleet.hub.routes.inventory import AGENT_WS_PATH, agent_socket
from testfleet.hub.runtime import Hub
from testfleet.protocol.api import ErrorBody
from testfleet.protocol.descriptor import JobDescriptor
from testfleet.protocol.version import API_VERSION, API_VERSION_HEADER, SERVER_ID_HEADER
from testfleet.store.db import Store

MAX_BODY_BYTES = 2 * 1024 * 1024
"""The largest request body, counted while it streams in; a router or route that takes
uploads sets its own `max_body_size`. Included per router (not app-wide) so that the 413 is
answered inside `RequestGuard`, which makes it the hub's JSON error."""


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

    app = HubApp(
        docs_url=None,
        redoc_url=None,
        title="testfleet hub",
        version=__version__,
        lifespan=lifespan,
        description="Jobs, devices and agents of a test lab. See docs/api.md.",
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.server_id = config.effective_server_id
    install_error_handlers(app)
    for module in (
        ops,
        jobs,
        deletions,
        inventory,
        sessions,
        tokens,
        artifacts,
        testcases,
        webhooks,
        schedules,
        overview,
        coverage,
        coverage_reports,
        testground,
        testplans,
        sync,
        session,
        live,
        devmode,
        ui,
    ):
        app.include_router(module.router, max_body_size=MAX_BODY_BYTES)
    serve_api_docs(app)

    app.openapi = partial(_openapi, app)  # type: ignore[method-assign]
    app.add_middleware(RequestGuard, server_id=config.effective_server_id)
    app.add_middleware(ServerHeaders, server_id=config.effective_server_id)
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's OpenAPI document, with the job descriptor's schema among its components
    (`POST /api/v1/jobs` reads its body itself, to take YAML as well as JSON)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        descriptor = JobDescriptor.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(descriptor.pop("$defs", {}))
        components["JobDescriptor"] = descriptor
        app.openapi_schema = schema
    return app.openapi_schema


class HubApp(FastAPI):
    """The hub's application. WebDriver requests (`/session...`, `GET /status`, `/wd/hub/...`)
    go straight to the gateway, and agents' WebSockets straight to their handler, before any
    middleware or router: the fewest steps on every proxied command and on every connection of
    a reconnecting fleet (both answer their own errors: W3C-shaped, or the wire's ERROR)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            hub = getattr(self.state, "hub", None)
            if scope["path"] == "/healthz" and scope["method"] == "GET" and hub is not None:
                await self._healthz(hub.server_id, send)  # probed often: no stack at all
                return
            path = gateway_path(scope["method"], scope["path"])
            if path is not None and hub is not None:
                scope["app"] = self
                await hub.gateway.gateway(scope, receive, send, path)
                return
        elif (
            kind == "websocket"
            and scope["path"] == AGENT_WS_PATH
            and getattr(self.state, "hub", None) is not None
        ):
            scope["app"] = self
            await agent_socket(WebSocket(scope, receive, send))
            return
        await super().__call__(scope, receive, send)

    async def _healthz(self, server_id: str, send: Send) -> None:
        """`GET /healthz` as the route in routes/ops.py answers it, without the middleware."""
        if self._health is None:
            body = json.dumps({"status": "ok", "server_id": server_id}).encode()
            self._health = (
                [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (SERVER_ID_HEADER.lower().encode(), server_id.encode()),
                ],
                body,
            )
        headers, body = self._health
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    _health: tuple[list[tuple[bytes, bytes]], bytes] | None = None


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
