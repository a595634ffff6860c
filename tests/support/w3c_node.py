"""A W3C-shaped WebDriver endpoint for tests: sessions, a few commands, a PNG screenshot and
real error answers, served by uvicorn on a free loopback port in the test's event loop.

    async with fake_node() as node:
        node.url                # http://127.0.0.1:PORT
        node.sessions           # live session ids -> capabilities
        node.deleted            # session ids deleted, in order
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.support.processes import free_port
from tests.support.served import served

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def w3c_error(status: int, error: str, message: str) -> JSONResponse:
    """A driver's error answer."""
    return JSONResponse(
        {"value": {"error": error, "message": message, "stacktrace": "at fake"}}, status
    )


@dataclass
class FakeNode:
    """The endpoint's state, for assertions."""

    port: int = field(default_factory=free_port)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    arrived: list[tuple[bytes, list[tuple[bytes, bytes]]]] = field(default_factory=list)
    """Every request's raw path and headers, as they reached the node."""
    refuse_sessions: bool = False
    create_delay: float = 0.0

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> ASGIApp:
        """The ASGI application."""

        async def new_session(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            if self.create_delay:
                await asyncio.sleep(self.create_delay)
            if self.refuse_sessions:
                return w3c_error(500, "session not created", "fake: no more sessions")
            capabilities = dict(body["capabilities"]["alwaysMatch"])
            session_id = uuid.uuid4().hex
            self.sessions[session_id] = capabilities
            return JSONResponse({"value": {"sessionId": session_id, "capabilities": capabilities}})

        async def command(request: Request) -> Response:
            session_id = request.path_params["sid"]
            rest = request.path_params.get("rest", "")
            if session_id not in self.sessions:
                return w3c_error(404, "invalid session id", f"fake: no session {session_id}")
            if request.method == "DELETE" and not rest:
                del self.sessions[session_id]
                self.deleted.append(session_id)
                return JSONResponse({"value": None})
            if rest == "slow":
                await asyncio.sleep(float(request.query_params.get("seconds", "2")))
                return JSONResponse({"value": "done"})
            if rest == "title":
                return JSONResponse({"value": "Fake page"})
            if rest.startswith("raw/"):  # what reached the node, as it was sent
                seen = {
                    "path": request.scope["raw_path"].decode(),
                    "headers": dict(request.headers),
                }
                return JSONResponse({"value": seen})
            if rest == "screenshot":
                return JSONResponse({"value": base64.b64encode(PNG).decode()})
            if rest == "echo":
                return Response(await request.body(), media_type="application/json")
            if rest == "big":
                size = int(request.query_params.get("size", "1000000"))
                return JSONResponse({"value": "x" * size})
            if rest == "element":
                return w3c_error(404, "no such element", "fake: no element matches")
            return JSONResponse({"value": None})

        routes = Starlette(
            routes=[
                Route("/session", new_session, methods=["POST"]),
                Route("/session/{sid}", command, methods=["GET", "POST", "DELETE"]),
                Route("/session/{sid}/{rest:path}", command, methods=["GET", "POST", "DELETE"]),
            ]
        )

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                self.arrived.append((scope["raw_path"], list(scope["headers"])))
            await routes(scope, receive, send)

        return app


@contextlib.asynccontextmanager
async def fake_node(**settings: Any) -> AsyncIterator[FakeNode]:
    """Serve a FakeNode until the block ends."""
    node = FakeNode(**settings)
    async with served(node.app(), node.port):
        yield node
