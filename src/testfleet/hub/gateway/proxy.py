"""Forwarding to nodes' drivers: pooled keep-alive connections, bodies streamed both ways, and
the driver's answer passed to the client as it is: status, headers and bytes.

Clients' commands go through `node_http` (the lean hot path); the hub's own requests to nodes
(new session, screenshot, delete) and HEAD requests through aiohttp's client, whose C HTTP
parser also costs a fraction of httpx/httpcore's pure-Python h11 (docs/performance.md).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict
from starlette.types import Send

from testfleet.hub.gateway.node_http import (
    NodeBroke,
    NodeConnection,
    NodePool,
    request_head,
    send_chunked,
    send_streamed,
    split_url,
)

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
NOT_FORWARDED = HOP_BY_HOP | {b"expect"}
"""Also `Expect`: the hub has the whole body (or streams it) before the node answers."""
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_IDEMPOTENT = frozenset({"GET", "DELETE", "OPTIONS"})

SMALL_BODY = 256 * 1024
"""Answers up to this size are read whole and sent in one piece; larger ones are streamed."""
ERROR_HEAD = 4096
"""How much of an error answer is kept to name the W3C error in the session's history."""

_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10.0, sock_read=900.0)
"""A driver command may run long (a page load), never forever."""
_ERRORS = (aiohttp.ClientError, TimeoutError)


class NodeUnreachable(Exception):
    """The node could not be reached, or broke off before it answered."""


@dataclass(frozen=True)
class Answer:
    """What the node answered: its status and, for an error, the head of its body."""

    status: int
    head: bytes = b""


def forwarded_headers(headers: list[tuple[bytes, bytes]], length: int | None) -> CIMultiDict[str]:
    """The client's headers as the node gets them."""
    kept: CIMultiDict[str] = CIMultiDict(
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in headers
        if k.lower() not in HOP_BY_HOP
    )
    if length is not None:
        kept["Content-Length"] = str(length)
    return kept


class NodeClient:
    """One pool of connections to every node, shared by all sessions of this hub (made on
    first use, in the running event loop)."""

    def __init__(self, max_connections: int = 2000) -> None:
        self._max = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._pool: NodePool | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._max, keepalive_timeout=30.0, enable_cleanup_closed=True
                ),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),  # one client's cookies are not another's
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                timeout=_TIMEOUT,
            )
        return self._session

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    async def call(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        within: float = 30.0,
    ) -> tuple[int, bytes]:
        """A request of the hub's own (new session, screenshot, delete): status and body."""
        headers = {"Content-Type": "application/json; charset=utf-8"} if body else {}
        try:
            async with self._http().request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=within, connect=min(within, 10.0)),
            ) as response:
                return response.status, await response.read()
        except TimeoutError:
            raise NodeUnreachable(f"{url}: no answer within {within:g} s") from None
        except aiohttp.ClientError as error:
            raise NodeUnreachable(f"{url}: {type(error).__name__}: {error}") from None

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
        if method == "HEAD":  # the parser cannot tell a HEAD answer has no body
            return await self._forward_general(method, url, headers, body, length, send)
        try:
            origin, target, auth = split_url(url)
        except ValueError as error:
            raise NodeUnreachable(str(error)) from None
        kept = [(name, value) for name, value in headers if name not in NOT_FORWARDED]
        if auth is not None:
            kept.append((b"authorization", auth))
        if isinstance(body, bytes):
            size = len(body) if body or method in _BODY_METHODS else None
            request = request_head(method, target, origin, kept, size) + body
        else:
            if length is None:
                kept.append((b"transfer-encoding", b"chunked"))
            request = request_head(method, target, origin, kept, length)
        if self._pool is None:
            self._pool = NodePool(self._max)
        pool = self._pool
        connection: NodeConnection | None = None
        try:
            for attempt in (1, 2):
                try:
                    connection = await pool.acquire(origin, fresh=attempt > 1)
                    await connection.write(request)
                    if not isinstance(body, bytes):
                        await (send_streamed if length is not None else send_chunked)(
                            connection, body
                        )
                    connection.sent = True
                    await connection.wait_head()
                    break
                except NodeBroke as broke:
                    if connection is not None and connection.head_done:
                        break  # it answered before taking the whole body (a 413): pass it on
                    again = (
                        attempt == 1
                        and connection is not None
                        and connection.uses > 1
                        and _may_send_again(method, body, broke)
                    )
                    if connection is not None:
                        pool.release(connection)
                        connection = None
                    if again:
                        continue  # the node had closed the idle connection: a new one
                    raise NodeUnreachable(f"{url}: {broke}") from None
            assert connection is not None
            return await _relay(connection, url, send)
        finally:
            if connection is not None:
                pool.release(connection)

    async def _forward_general(
        self,
        method: str,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes],
        length: int | None,
        send: Send,
    ) -> Answer:
        """`forward` through aiohttp's client."""
        started = False
        try:
            async with self._http().request(
                method, url, headers=forwarded_headers(headers, length), data=body or None
            ) as response:
                status = response.status
                size = response.content_length
                out = [
                    (k.lower(), v) for k, v in response.raw_headers if k.lower() not in HOP_BY_HOP
                ]
                if size is not None and size <= SMALL_BODY:
                    content = await response.read()
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
                async for chunk in response.content.iter_any():
                    if status >= 400 and len(head) < ERROR_HEAD:
                        head += chunk[: ERROR_HEAD - len(head)]
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
                return Answer(status, head)
        except _ERRORS as error:
            if not started:
                raise NodeUnreachable(f"{url}: {type(error).__name__}: {error}") from None
            _log.warning("the answer of %s broke off: %s", url, error)
            await send({"type": "http.response.body", "body": b""})
            return Answer(502)


def _may_send_again(method: str, body: bytes | AsyncIterator[bytes], broke: NodeBroke) -> bool:
    """Whether a request that broke on a kept connection may go again on a new one: it broke
    before any answer and not for silence, and either none of it was written or it is
    idempotent (a body it streamed cannot be sent twice)."""
    if broke.answered or broke.timed_out or not isinstance(body, bytes):
        return False
    return not broke.written or method in _IDEMPOTENT


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def _relay(connection: NodeConnection, url: str, send: Send) -> Answer:
    """Pass the node's answer, whose head has come, to the client."""
    status = connection.status
    out = [(name, value) for name, value in connection.headers if name not in HOP_BY_HOP]
    size = _content_length(connection.headers)
    if connection.complete or (size is not None and size <= SMALL_BODY):
        try:
            await connection.wait_complete()
        except NodeBroke as broke:
            raise NodeUnreachable(f"{url}: {broke}") from None
        content = connection.take()
        out.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": content})
        return Answer(status, content[:ERROR_HEAD] if status >= 400 else b"")
    if size is not None:
        out.append((b"content-length", str(size).encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    head = b""
    try:
        while not connection.complete or connection.chunks:
            await connection.wait_data()
            chunk = connection.take()
            if status >= 400 and len(head) < ERROR_HEAD:
                head += chunk[: ERROR_HEAD - len(head)]
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except NodeBroke as broke:
        # Left unfinished, so the server closes the client's connection: a client must not
        # take a cut answer for a whole one.
        _log.warning("the answer of %s broke off: %s", url, broke)
        return Answer(502)
    await send({"type": "http.response.body", "body": b""})
    return Answer(status, head)
