"""The WebDriver gateway's HTTP face, as plain ASGI (no router or dependency injection on the
path of every command): `POST /session`, `/session/{id}/...`, `GET /status`, the same under
`/wd/hub`. Answers are W3C-shaped; a node's own answers pass through untouched."""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence

from starlette.types import Receive, Scope, Send

from testfleet.hub.gateway.activity import CommandLog, command_name, error_code
from testfleet.hub.gateway.creator import SessionCreator
from testfleet.hub.gateway.metrics import GatewayMetrics
from testfleet.hub.gateway.proxy import SMALL_BODY, NodeClient, NodeUnreachable
from testfleet.hub.gateway.sessions import SessionEnder, SessionRoutes, gone
from testfleet.hub.gateway.status import GridStatus
from testfleet.hub.gateway.w3c import W3CError, error_body
from testfleet.protocol.version import REQUESTOR_HEADER
from testfleet.store import driver_sessions as session_store
from testfleet.store.db import Store
from testfleet.store.tokens import find_token

_log = logging.getLogger(__name__)
MAX_NEW_SESSION_BODY = 1024 * 1024
TOKEN_CACHE = 10.0
"""Seconds a checked token is trusted without asking the store again."""
_JSON = [(b"content-type", b"application/json; charset=utf-8"), (b"cache-control", b"no-cache")]
_DRIVE = frozenset({"admin", "operator"})
_REQUESTOR = REQUESTOR_HEADER.lower().encode()


def gateway_path(method: str, path: str) -> str | None:
    """The gateway's own path for a request (`/wd/hub` stripped), or None when the request is
    not the gateway's. At the root, `/status` is WebDriver's only when read (GET): Testground's
    daemon API has its own `POST /status`."""
    if path.startswith("/wd/hub"):
        return path[len("/wd/hub") :] or "/"
    if path == "/session" or path.startswith("/session/"):
        return path
    if path == "/status" and method in ("GET", "HEAD"):
        return path
    return None


async def send_json(
    send: Send, status: int, body: bytes, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Answer with a JSON body."""
    headers = [*_JSON, (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Gateway:
    """Serves WebDriver clients: creates, forwards and ends sessions."""

    def __init__(
        self,
        *,
        store: Store,
        auth_enabled: bool,
        creator: SessionCreator,
        routes: SessionRoutes,
        ender: SessionEnder,
        nodes: NodeClient,
        log: CommandLog,
        metrics: GatewayMetrics,
        status: GridStatus,
    ) -> None:
        self._commands = metrics.commands
        self._store = store
        self._auth = auth_enabled
        self._creator = creator
        self._routes = routes
        self._ender = ender
        self._nodes = nodes
        self._log = log
        self._status = status
        self._tokens: dict[str, tuple[float, str | None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        """Serve one gateway request (`path` from `gateway_path`)."""
        method = scope["method"]
        try:
            if path in ("/status", "/status/"):
                if method != "GET":
                    raise W3CError("unknown method", f"{method} /status: use GET")
                await send_json(send, 200, await self._status.document())
                return
            requestor = await self._requestor(scope)
            if path in ("/session", "/session/"):
                if method != "POST":
                    raise W3CError("unknown method", f"{method} /session: use POST")
                body = await _read_body(receive, MAX_NEW_SESSION_BODY)
                status, answer = await self._creator.create(body, requestor, receive)
                await send_json(send, status, answer)
                return
            if not path.startswith("/session/"):
                raise W3CError("unknown command", f"{method} {path} is not a WebDriver command")
            session_id, _, rest = path[len("/session/") :].partition("/")
            if any(part in (".", "..") for part in rest.split("/")):
                raise W3CError("invalid argument", f"{path}: dot segments are not forwarded")
            rest = "/" + rest if rest else ""
            if method == "DELETE" and rest in ("", "/"):
                await self._delete(session_id, send)
            else:
                raw = _raw_rest(scope, session_id, rest)
                await self._forward(scope, receive, send, session_id, rest, raw)
        except W3CError as error:
            await send_json(send, error.status, error.body(), _challenge(error))
        except Exception as error:  # a bug or the store away: still a W3C answer
            _log.exception("gateway: %s %s failed", method, path)
            with contextlib.suppress(Exception):  # unless the answer had begun
                await send_json(send, 500, error_body("unknown error", f"testfleet: {error!r}"))

    async def _requestor(self, scope: Scope) -> str:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if not self._auth:
            name = _header(headers, _REQUESTOR).decode("latin-1")
            return name.strip()[:200] or "anonymous"
        secret = _secret(_header(headers, b"authorization").decode("latin-1"))
        if secret is None:
            raise _Unauthorized("this hub requires a token: Bearer, or Basic with it as password")
        now = time.monotonic()
        cached = self._tokens.get(secret)
        if cached is None or now - cached[0] > TOKEN_CACHE:
            token = await self._store.read(find_token, secret)
            role = token.role if token is not None else None
            cached = self._tokens[secret] = (now, f"{token.name}|{role}" if token else None)
        if cached[1] is None:
            raise _Unauthorized("the token is unknown or revoked")
        name, _, role = cached[1].partition("|")
        if role not in _DRIVE:
            raise _Unauthorized(f"role {role!r} may not drive devices; it needs admin or operator")
        return name

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, session_id: str, rest: str, raw: str
    ) -> None:
        """Forward a command; `rest` names it (decoded), `raw` is what the node is sent (the
        client's own encoding of the path after the session id)."""
        route = await self._routes.get(session_id)
        method = scope["method"]
        started = time.perf_counter()
        at = time.time()
        url = route.base + raw
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        headers = scope["headers"]
        length = _length(headers)
        body: bytes | AsyncIterator[bytes]
        if length is not None and length <= SMALL_BODY:
            body = await _read_body(receive, SMALL_BODY)
            length = len(body)
        elif length is not None or (b"transfer-encoding", b"chunked") in headers:
            body = _stream_body(receive)
        else:  # no framing: no body (a GET, a DELETE)
            body = b""
        self._log.began(route.row_id, route.idle_timeout)
        try:
            answer = await self._nodes.forward(method, url, headers, body, length, send)
        except NodeUnreachable as unreachable:
            self._routes.forget(session_id)
            record = await self._store.read(session_store.by_session_id, session_id)
            if record is None or record.state != session_store.ACTIVE:
                raise gone(session_id, record) from None
            raise W3CError(
                "unknown error", f"testfleet: the node of session {session_id}: {unreachable}"
            ) from None
        finally:
            self._log.ended(route.row_id)
        code = error_code(answer.head) if answer.status >= 400 else None
        duration = (time.perf_counter() - started) * 1000
        name = command_name(method, rest)
        self._commands.inc()
        self._log.record(
            route.row_id, route.idle_timeout, at, method, name, answer.status, code, duration
        )

    async def _delete(self, session_id: str, send: Send) -> None:
        route = await self._routes.get(session_id)
        taken = await self._store.write(session_store.begin_ending, route.row_id)
        if taken is None:
            self._routes.forget(session_id)
            raise gone(session_id, await self._store.read(session_store.get, route.row_id))
        started, at = time.perf_counter(), time.time()
        answer = await self._ender.end(taken, "deleted by the client")
        status, body = answer if answer is not None else (200, b'{"value":null}')
        duration = (time.perf_counter() - started) * 1000
        self._log.record(
            route.row_id, route.idle_timeout, at, "DELETE", "DELETE /", status, None, duration
        )
        await send_json(send, status, body)


class _Unauthorized(W3CError):
    def __init__(self, message: str) -> None:
        super().__init__("unknown error", message)

    @property
    def status(self) -> int:
        return 401


def _challenge(error: W3CError) -> list[tuple[bytes, bytes]]:
    if isinstance(error, _Unauthorized):
        return [(b"www-authenticate", b'Basic realm="testfleet"')]
    return []


def _secret(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            _, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return password or None
    return None


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes:
    """The first value of a (lower-case) header, or b""."""
    for key, value in headers:
        if key == name:
            return value
    return b""


def _length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for key, value in headers:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                raise W3CError("invalid argument", "Content-Length is not a number") from None
    return None


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise W3CError("invalid argument", "the client went away while sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise W3CError("invalid argument", f"the body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _raw_rest(scope: Scope, session_id: str, rest: str) -> str:
    """The path after the session id as the client encoded it (what the node is sent: a
    decoded `%0D%0A` would end the request line). Only printable ASCII is forwarded."""
    raw_path: bytes | None = scope.get("raw_path")
    if raw_path is None:
        return rest
    _, marker, tail = raw_path.partition(b"/session/")
    raw_id, slash, raw_rest = tail.partition(b"/")
    if not marker or raw_id != session_id.encode("latin-1"):
        raise W3CError("invalid argument", "the session id is not given plainly in the path")
    if any(byte <= 0x20 or byte >= 0x7F for byte in raw_rest):
        raise W3CError("invalid argument", "the path holds characters that are not URL-encoded")
    return (slash + raw_rest).decode("ascii")


async def _stream_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise W3CError("invalid argument", "the client went away while sending the body")
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
