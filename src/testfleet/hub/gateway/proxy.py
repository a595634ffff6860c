"""Forwarding to nodes' drivers: pooled keep-alive connections (httpcore, the transport under
httpx, without the client layer's per-request cost), bodies streamed both ways, and the
driver's answer passed to the client as it is: status, headers and bytes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpcore
from starlette.types import Send

_log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"authorization",
        b"content-length",
    }
)
"""Headers that belong to one connection (and the hub's own credentials), never forwarded."""

SMALL_BODY = 256 * 1024
"""Answers up to this size are read whole and sent in one piece; larger ones are streamed."""
ERROR_HEAD = 4096
"""How much of an error answer is kept to name the W3C error in the session's history."""

_TIMEOUTS = {"connect": 10.0, "read": 900.0, "write": 60.0, "pool": 60.0}
"""A driver command may run long (a page load), never forever."""


class NodeUnreachable(Exception):
    """The node could not be reached, or broke off before it answered."""


@dataclass(frozen=True)
class Answer:
    """What the node answered: its status and, for an error, the head of its body."""

    status: int
    head: bytes = b""


def forwarded_headers(headers: list[tuple[bytes, bytes]], length: int | None) -> list[Any]:
    """The client's headers as the node gets them."""
    kept = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
    if length is not None:
        kept.append((b"content-length", str(length).encode()))
    return kept


class NodeClient:
    """One pool of connections to every node, shared by all sessions of this hub."""

    def __init__(self, max_connections: int = 2000) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
            retries=1,
        )

    async def close(self) -> None:
        """Close every pooled connection."""
        await self._pool.aclose()

    async def call(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        within: float = 30.0,
    ) -> tuple[int, bytes]:
        """A request of the hub's own (new session, screenshot, delete): status and body."""
        headers = [(b"content-type", b"application/json; charset=utf-8")] if body else []
        timeouts = {"connect": min(within, 10.0), "read": within, "write": within, "pool": 30.0}
        try:
            response = await self._pool.request(
                method,
                url,
                headers=forwarded_headers(headers, len(body) if body else None),
                content=body or b"",
                extensions={"timeout": timeouts},
            )
        except httpcore.TimeoutException as error:
            raise NodeUnreachable(f"{url}: no answer within {within:g} s ({error})") from None
        except (httpcore.NetworkError, httpcore.ProtocolError) as error:
            raise NodeUnreachable(f"{url}: {type(error).__name__}: {error}") from None
        return response.status, response.content

    async def forward(
        self,
        method: str,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes],
        length: int | None,
        send: Send,
    ) -> Answer:
        """Send the client's request to the node and stream its answer back through `send`.

        Raises NodeUnreachable if the node fails before answering; once the answer has begun
        it is passed on as far as the node sends it.
        """
        started = False
        try:
            async with self._pool.stream(
                method,
                url,
                headers=forwarded_headers(headers, length),
                content=body,
                extensions={"timeout": _TIMEOUTS},
            ) as response:
                status = response.status
                size = _content_length(response.headers)
                out = [(k.lower(), v) for k, v in response.headers if k.lower() not in HOP_BY_HOP]
                if size is not None and size <= SMALL_BODY:
                    content = await response.aread()
                    out.append((b"content-length", str(len(content)).encode()))
                    started = True
                    await send({"type": "http.response.start", "status": status, "headers": out})
                    await send({"type": "http.response.body", "body": content})
                    return Answer(status, content[:ERROR_HEAD] if status >= 400 else b"")
                if size is not None:
                    out.append((b"content-length", str(size).encode()))
                started = True
                await send({"type": "http.response.start", "status": status, "headers": out})
                head = b""
                async for chunk in response.aiter_stream():
                    if status >= 400 and len(head) < ERROR_HEAD:
                        head += chunk[: ERROR_HEAD - len(head)]
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
                return Answer(status, head)
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException) as error:
            if not started:
                raise NodeUnreachable(f"{url}: {type(error).__name__}: {error}") from None
            _log.warning("the answer of %s broke off: %s", url, error)
            await send({"type": "http.response.body", "body": b""})
            return Answer(502)


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for key, value in headers:
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
