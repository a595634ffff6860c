"""Connections read a bounded number per turn of the event loop (`hub/paced_reads.py`): the
allowance itself (and a connection that fails to start), and real uvicorn servers on
asyncio's loop and on uvloop that complete every one of a burst of WebSocket handshakes,
held ones included, and those that come in pieces; plain HTTP requests never held; WebSocket
messages from many clients at once, all of them, in order, the last ones sent just before
the client closed included."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvloop
import websockets

from testfleet.hub import paced_reads
from testfleet.hub.paced_reads import (
    PacedHttpToolsProtocol,
    PacedWebSocketProtocol,
    TurnAllowance,
    may_be_websocket_handshake,
)
from tests.support.processes import free_port
from tests.support.served import served

pytestmark = pytest.mark.anyio

BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(("asyncio", {"loop_factory": uvloop.new_event_loop}), id="uvloop"),
]


class Fake:
    """A stand-in for a held connection: records when it is started."""

    def __init__(self, log: list[str], name: str, closed: bool = False, fails: bool = False):
        self.log, self.name, self.closed, self.fails = log, name, closed, fails
        self.aborted = False

    def start_reading(self) -> bool:
        if self.fails:
            raise RuntimeError("the parser choked")
        if self.closed:
            return False
        self.log.append(self.name)
        return True

    def abort(self) -> None:
        self.aborted = True


async def next_turn() -> None:
    await asyncio.sleep(0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_turn_lets_per_turn_connections_read_and_holds_the_rest_for_later_turns() -> None:
    pacing = TurnAllowance(per_turn=2)
    started: list[str] = []
    admitted = [pacing.admit(Fake(started, f"c{n}")) for n in range(5)]
    assert admitted == [True, True, False, False, False]
    assert (pacing.waiting, pacing.held) == (3, 3)
    await next_turn()
    assert started == ["c2", "c3"]
    await next_turn()
    assert started == ["c2", "c3", "c4"]
    assert pacing.waiting == 0
    await next_turn()
    assert pacing.admit(Fake(started, "c5")) is True  # a fresh turn has its whole allowance


async def test_a_connection_closed_while_held_is_skipped_without_using_the_allowance() -> None:
    pacing = TurnAllowance(per_turn=1)
    started: list[str] = []
    assert pacing.admit(Fake(started, "first")) is True
    for held in (Fake(started, "gone", closed=True), Fake(started, "next")):
        assert pacing.admit(held) is False
    await next_turn()
    assert started == ["next"]


async def test_a_connection_failing_to_start_is_dropped_and_the_others_still_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pacing = TurnAllowance(per_turn=1)
    started: list[str] = []
    failing = Fake(started, "bad", fails=True)
    assert pacing.admit(Fake(started, "first")) is True
    for held in (failing, Fake(started, "a"), Fake(started, "b")):
        assert pacing.admit(held) is False
    with caplog.at_level(logging.ERROR, logger="testfleet.hub.paced_reads"):
        for _ in range(4):
            await next_turn()
    assert failing.aborted
    assert started == ["a", "b"]
    assert "failed to start reading" in caplog.text


def test_only_what_may_be_a_websocket_handshake_is_held() -> None:
    upgrade = (
        b"GET /agents HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n"
    )
    assert may_be_websocket_handshake(upgrade)
    assert may_be_websocket_handshake(b"GET /agents HTTP/1.1\r\nHost: x\r\n")  # not all yet
    assert not may_be_websocket_handshake(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    body_only = b"POST /api/v1/jobs HTTP/1.1\r\nContent-Length: 9\r\n\r\nwebsocket"
    assert not may_be_websocket_handshake(body_only)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Plain HTTP: answers its path. WebSocket: records every message under its path."""
    if scope["type"] == "http":
        body = scope["path"].encode()
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    mine = received.setdefault(scope["path"], [])
    while (message := await receive())["type"] == "websocket.receive":
        mine.append(message["text"])


received: dict[str, list[str]] = {}


@contextlib.asynccontextmanager
async def paced_server() -> AsyncIterator[int]:
    received.clear()
    port = free_port()
    async with served(app, port, http=PacedHttpToolsProtocol, ws=PacedWebSocketProtocol):
        yield port


def handshake(path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()


async def answer_head(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)


async def all_at_once(port: int, requests: list[bytes]) -> list[bytes]:
    """Connect for every request first, then send them all at once: one turn's burst."""
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in requests]
    for (_, writer), request in zip(connections, requests, strict=True):
        writer.write(request)
    heads = [await answer_head(reader) for reader, _ in connections]
    for _, writer in connections:
        writer.close()
    return heads


async def in_pieces(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for start in range(0, len(request), 20):
        writer.write(request[start : start + 20])
        await writer.drain()
        await asyncio.sleep(0.01)
    head = await answer_head(reader)
    writer.close()
    return head


@pytest.mark.parametrize("anyio_backend", BACKENDS)
async def test_a_burst_of_handshakes_is_answered_in_full_on_either_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(paced_reads, "FIRST_READS_PER_TURN", 3)
    async with paced_server() as port:
        burst, split = await asyncio.wait_for(
            asyncio.gather(
                all_at_once(port, [handshake(f"/n{n}") for n in range(60)]),
                asyncio.gather(*(in_pieces(port, handshake(f"/split{n}")) for n in range(5))),
            ),
            30,
        )
        pacing = paced_reads.allowance(asyncio.get_running_loop(), "first")
        assert pacing.held > 0, "the burst never filled a turn: nothing was held"
        assert pacing.waiting == 0
    for head in [*burst, *split]:
        assert head.startswith(b"HTTP/1.1 101 "), head[:80]


@pytest.mark.parametrize("anyio_backend", BACKENDS)
async def test_plain_requests_on_new_connections_are_never_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(paced_reads, "FIRST_READS_PER_TURN", 1)
    async with paced_server() as port:
        heads = await all_at_once(port, [get(f"/n{n}") for n in range(40)])
        pacing = paced_reads.allowance(asyncio.get_running_loop(), "first")
        assert pacing.held == 0
    assert all(head.startswith(b"HTTP/1.1 200 ") for head in heads)


@pytest.mark.parametrize("anyio_backend", BACKENDS)
async def test_websocket_messages_of_many_clients_at_once_all_arrive_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(paced_reads, "FRAMES_PER_TURN", 2)
    sent = {f"/c{n}": [f"c{n}-m{m}" for m in range(10)] for n in range(20)}
    async with paced_server() as port:
        clients = [await websockets.connect(f"ws://127.0.0.1:{port}{path}") for path in sent]

        async def send_then_close(client: Any, messages: list[str]) -> None:
            for message in messages:
                await client.send(message)
            await client.close()  # right after the last: it must not be lost

        await asyncio.wait_for(
            asyncio.gather(
                *(send_then_close(c, m) for c, m in zip(clients, sent.values(), strict=True))
            ),
            20,
        )
        for _ in range(500):
            if all(len(received.get(path, [])) == 10 for path in sent):
                break
            await asyncio.sleep(0.01)
        frames = paced_reads.allowance(asyncio.get_running_loop(), "frames")
    assert frames.held > 0, "the clients never filled a turn: nothing was held"
    assert received == sent
