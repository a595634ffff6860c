"""The hub's first look at every request: NUL characters in the path or query string are
refused (400) before routing, since no store can keep them; and the plain-text 413 that the
body limit sends for a too-large declared Content-Length becomes the hub's JSON error.

(Request bodies are bounded by FastAPI's `max_body_size` while they stream in: see app.py.)
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from testfleet.protocol.api import ErrorBody


class RequestGuard:
    """Plain ASGI middleware (see the module's docstring)."""

    def __init__(self, app: ASGIApp, server_id: str) -> None:
        self.app = app
        self.server_id = server_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").lower()
        in_path = "\x00" in scope["path"]
        if in_path or b"%00" in query or b"\x00" in query:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            where = "path" if in_path else "query string"
            await self._error(send, 400, "invalid_request", f"the {where} holds a NUL character")
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        replacing = False

        async def send_json_413(message: Message) -> None:
            nonlocal replacing
            if message["type"] == "http.response.start" and message["status"] == 413:
                content_type = Headers(raw=message.get("headers", [])).get("content-type", "")
                replacing = content_type.startswith("text/plain")
                if replacing:
                    limit = scope.get("starlette.max_body_size")
                    detail = f"at most {limit} bytes" if limit is not None else "too large"
                    text = f"the request body is too large: {detail}"
                    await self._error(send, 413, "too_large", text)
                    return
            if replacing:
                return  # the plain-text body of the replaced answer
            await send(message)

        await self.app(scope, receive, send_json_413)

    async def _error(self, send: Send, status: int, code: str, message: str) -> None:
        body = json.dumps(
            ErrorBody(code=code, message=message, server_id=self.server_id).model_dump()
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
