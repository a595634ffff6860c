"""The hot path of the gateway: forwarding a client's command to a node over pooled keep-alive
HTTP/1.1 connections, answers parsed with httptools (the C parser uvicorn serves the hub with).

Every command of every session goes through here, so it does no more than a proxy must: write
the request, parse the answer, hand its bytes on. A general client (aiohttp's ClientSession)
costs several times as much per request in timers, tracing, cookie and header objects
(docs/performance.md). The hub's own requests to nodes (new session, screenshot, delete) and
HEAD requests, whose answers the parser cannot frame by itself, still go through aiohttp.

A kept connection is reused for at most IDLE_TIMEOUT seconds after its last answer (shorter
than Node's 5 s, so Appium's servers do not close it under the hub's feet). One taken from the
pool that breaks before any byte of the answer is one the node had closed while idle: the
request is sent again once on a new connection when nothing of it was written, or when it is
idempotent (GET, DELETE); never after a timeout, and never a streamed body.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from urllib.parse import unquote

import httptools

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 900.0
"""Seconds a driver may go without sending a byte of its answer (a page load can run long)."""
IDLE_TIMEOUT = 4.0
"""Seconds an unused connection is kept in the pool."""
MAX_IDLE_PER_NODE = 256
PAUSE_ABOVE = 1024 * 1024
"""Bytes of an answer buffered before reading from the node pauses (the client is slower)."""

Origin = tuple[str, str, int]
"""scheme, host, port"""


class NodeBroke(Exception):
    """The node's connection failed: `answered` whether any byte of an answer had come,
    `written` whether any of the request had been sent, `timed_out` whether it went silent."""

    def __init__(
        self, message: str, answered: bool, *, written: bool = True, timed_out: bool = False
    ) -> None:
        super().__init__(message)
        self.answered = answered
        self.written = written
        self.timed_out = timed_out


def split_url(url: str) -> tuple[Origin, bytes, bytes | None]:
    """`http://[user:key@]host:port/path?q` as its origin, its request target and, when the URL
    carries credentials, the Authorization header's value for them."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise ValueError(f"{url!r} is not an http(s) URL")
    netloc, slash, path = rest.partition("/")
    userinfo, at, netloc = netloc.rpartition("@")
    default = "443" if scheme == "https" else "80"
    if netloc.startswith("["):  # [IPv6]:port
        host, _, tail = netloc[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else default
    else:
        host, colon, port = netloc.partition(":")
        port = port if colon else default
    if not host or not port.isdigit():
        raise ValueError(f"{url!r} names no host and port")
    auth = None
    if at:
        user, _, password = userinfo.partition(":")
        pair = f"{unquote(user)}:{unquote(password)}".encode()
        auth = b"Basic " + base64.b64encode(pair)
    return (scheme, host, int(port)), (slash + path or "/").encode("latin-1"), auth


class NodeConnection(asyncio.Protocol):
    """One keep-alive connection to a node, carrying one request at a time."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.closed_here = False
        self.in_use = False
        self.uses = 0
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.head_done = False
        self.ends_at_close = False
        self.complete = False
        self.keep_alive = False
        self.sent = False
        """Whether the whole request went out (a connection is reused only then)."""
        self.spilled = False
        """Whether bytes came after the answer (the connection is not reused)."""
        self.answered = False
        self.error: NodeBroke | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if (
            self.head_done
            and self.ends_at_close
            and exc is None
            and self.error is None
            and not self.closed_here
        ):
            self.complete = True  # a body framed by the node's end of the connection
        if not self.complete and self.error is None:
            reason = f"{type(exc).__name__}: {exc}" if exc else "the node closed the connection"
            self.error = NodeBroke(reason, self.answered)
        self._wake()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def data_received(self, data: bytes) -> None:
        if not self.in_use:  # an answer to nothing: never trust this connection again
            self.close()
            return
        self.answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self.error = NodeBroke(f"the node's answer is not HTTP: {error}", True)
            self.close()
            self._wake()

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self.complete:  # a second answer after ours
            self.spilled = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.complete:
            return
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        if self.status < 200:  # 100 Continue and the like: the real answer follows
            self.headers.clear()
            return
        self.head_done = True
        framed = any(name in (b"content-length", b"transfer-encoding") for name, _ in self.headers)
        self.ends_at_close = not framed and self.status not in (204, 304)
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > PAUSE_ABOVE and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status >= 200:
            self.complete = True
            self.keep_alive = self._parser.should_keep_alive()  # read before the parser resets
            self._wake()

    # use

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait_head(self) -> None:
        """Until the answer's status and headers have come."""
        await self._wait(lambda: self.head_done or self.complete)

    async def wait_complete(self) -> None:
        """Until the whole answer has come."""
        await self._wait(lambda: self.complete)

    async def wait_data(self) -> None:
        """Until some of the body has come, or its end."""
        await self._wait(lambda: bool(self.chunks) or self.complete)

    async def _wait(self, ready: Callable[[], bool]) -> None:
        loop = asyncio.get_running_loop()
        while self.error is None and not ready():
            self._waiter = loop.create_future()
            timer = loop.call_later(READ_TIMEOUT, self._timed_out)
            try:
                await self._waiter
            finally:
                timer.cancel()
                self._waiter = None
        if self.error is not None and not ready():
            raise self.error

    def _timed_out(self) -> None:
        self.error = NodeBroke(f"no answer for {READ_TIMEOUT:g} s", self.answered, timed_out=True)
        self.close()
        self._wake()

    def take(self) -> bytes:
        """The body bytes received so far (reading resumes if it had paused)."""
        data = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        self.chunks.clear()
        if self.buffered > PAUSE_ABOVE and self.transport is not None and not self.closed:
            self.transport.resume_reading()
        self.buffered = 0
        return data

    async def write(self, data: bytes) -> None:
        """Send bytes, waiting while the node does not read."""
        assert self.transport is not None
        if self.closed or self.transport.is_closing():
            raise NodeBroke("the node closed the connection", self.answered, written=False)
        self.transport.write(data)
        if self._writable is not None:
            await self._writable

    def begin(self) -> None:
        """Ready for the next request."""
        self._reset()
        self.in_use = True
        self.uses += 1

    @property
    def reusable(self) -> bool:
        """Whether the answer ended cleanly and the node keeps the connection open."""
        return (
            self.complete
            and self.keep_alive
            and self.sent
            and not self.spilled
            and not self.closed
            and not self.chunks
        )

    def close(self) -> None:
        """Close the connection (it is not used again)."""
        self.closed = True
        self.closed_here = True
        if self.transport is not None:
            self.transport.close()


class NodePool:
    """Idle keep-alive connections by node (the oldest first), and new ones made as needed."""

    def __init__(self, max_connections: int = 2000) -> None:
        self._idle: dict[Origin, deque[NodeConnection]] = {}
        self._slots = asyncio.Semaphore(max_connections)
        self._tls: ssl.SSLContext | None = None
        self._swept = time.monotonic()

    async def acquire(self, origin: Origin, *, fresh: bool = False) -> NodeConnection:
        """A connection to `origin`: an idle one unless `fresh`, or a new one."""
        await self._slots.acquire()
        try:
            idle = self._idle.get(origin)
            now = time.monotonic()
            while idle and not fresh:
                connection = idle.pop()  # the most recently used
                if not connection.closed and now - connection.idle_since < IDLE_TIMEOUT:
                    connection.begin()
                    return connection
                connection.close()
            connection = await self._connect(origin)
            connection.begin()
            return connection
        except BaseException:
            self._slots.release()
            raise

    async def _connect(self, origin: Origin) -> NodeConnection:
        scheme, host, port = origin
        tls = None
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                _, connection = await loop.create_connection(
                    lambda: NodeConnection(origin), host, port, ssl=tls
                )
        except TimeoutError:
            raise NodeBroke(
                f"no connection within {CONNECT_TIMEOUT:g} s", False, written=False
            ) from None
        except OSError as error:
            raise NodeBroke(f"{type(error).__name__}: {error}", False, written=False) from None
        return connection

    def release(self, connection: NodeConnection) -> None:
        """Give a connection back: pooled if it can carry another request, else closed."""
        self._slots.release()
        connection.in_use = False
        now = time.monotonic()
        if now - self._swept > IDLE_TIMEOUT:
            self._sweep(now)
        if not connection.reusable:
            connection.close()
            return
        idle = self._idle.setdefault(connection.origin, deque())
        if len(idle) >= MAX_IDLE_PER_NODE:
            connection.close()
            return
        connection.idle_since = now
        idle.append(connection)

    def _sweep(self, now: float) -> None:
        """Close expired connections everywhere; forget nodes with none left."""
        self._swept = now
        for origin, idle in list(self._idle.items()):
            _prune(idle, now)
            if not idle:
                del self._idle[origin]

    def close(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


def _prune(idle: deque[NodeConnection], now: float) -> None:
    """Keep only the open connections of `idle` that have not expired (in their order)."""
    alive = []
    for connection in idle:
        if connection.closed or now - connection.idle_since >= IDLE_TIMEOUT:
            connection.close()
        else:
            alive.append(connection)
    idle.clear()
    idle.extend(alive)


def request_head(
    method: str,
    target: bytes,
    origin: Origin,
    headers: list[tuple[bytes, bytes]],
    length: int | None,
) -> bytes:
    """The request line and headers; `length` None with a body means chunked framing."""
    _, host, port = origin
    host_header = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    parts = [method.encode(), b" ", target, b" HTTP/1.1\r\nhost: ", host_header.encode(), b"\r\n"]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    if length is not None:
        parts += (b"content-length: ", str(length).encode(), b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


async def send_chunked(connection: NodeConnection, body: AsyncIterator[bytes]) -> None:
    """Stream a body of unknown length in chunked framing."""
    async for chunk in body:
        if chunk:
            await connection.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
    await connection.write(b"0\r\n\r\n")


async def send_streamed(connection: NodeConnection, body: AsyncIterator[bytes]) -> None:
    """Stream a body whose length the head already gave."""
    async for chunk in body:
        if chunk:
            await connection.write(chunk)
