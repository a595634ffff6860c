"""Connections read a bounded number per turn of the event loop (`hub/paced_reads.py`): the
allowance itself, and real uvicorn servers on asyncio's loop and on uvloop that answer every
one of a burst of connections, held ones included, and those whose request comes in pieces;
WebSocket messages from many clients at once, all of them, in order, the last ones sent
just before the client closed included."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvicorn
import uvloop
import websockets

from testfleet.hub import paced_reads
from testfleet.hub.paced_reads import PacedHttpToolsProtocol, PacedWebSocketProtocol, TurnAllowance
from tests.support.processes import free_port

pytestmark = pytest.mark.anyio

BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(("asyncio", {"loop_factory": uvloop.new_event_loop}), id="uvloop"),
]


class Fake:
    """A stand-in for a held connection: records when it is started."""

    def __init__(self, log: list[str], name: str, closed: bool = False) -> None:
        self.log, self.name, self.closed = log, name, closed

    def start_reading(self) -> bool:
        if self.closed:
            return False
        self.log.append(self.name)
        return True


async def next_turn() -> None:
    await asyncio.sleep(0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_turn_lets_per_turn_connections_read_and_holds_the_rest_for_later_turns() -> None:
    pacing = TurnAllowance(asyncio.get_running_loop(), per_turn=2)
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
    pacing = TurnAllowance(asyncio.get_running_loop(), per_turn=1)
    started: list[str] = []
    assert pacing.admit(Fake(started, "first")) is True
    for held in (Fake(started, "gone", closed=True), Fake(started, "next")):
        assert pacing.admit(held) is False
    await next_turn()
    assert started == ["next"]


async def recorder(
    received: dict[str, list[str]],
) -> Callable[[dict[str, Any], Any, Any], Awaitable[None]]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        mine = received.setdefault(scope["path"], [])
        while (message := await receive())["type"] == "websocket.receive":
            mine.append(message["text"])

    return app


async def hello(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
    assert scope["type"] == "http"
    body = scope["path"].encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()


async def get_in_pieces(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    whole = request(path)
    for start in range(0, len(whole), 20):
        writer.write(whole[start : start + 20])
        await writer.drain()
        await asyncio.sleep(0.01)
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


async def get_together(port: int, paths: list[str]) -> list[bytes]:
    """Connect for every path first, then send every request at once: one turn's burst."""
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in paths]
    for (_, writer), path in zip(connections, paths, strict=True):
        writer.write(request(path))
    answers = [await asyncio.wait_for(reader.read(), 10) for reader, _ in connections]
    for _, writer in connections:
        writer.close()
    return answers


@pytest.mark.parametrize("anyio_backend", BACKENDS)
async def test_a_burst_of_connections_is_answered_in_full_on_either_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(paced_reads, "FIRST_READS_PER_TURN", 3)
    port = free_port()
    config = uvicorn.Config(
        hello,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        http=PacedHttpToolsProtocol,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        burst, split = await asyncio.wait_for(
            asyncio.gather(
                get_together(port, [f"/n{n}" for n in range(60)]),
                asyncio.gather(*(get_in_pieces(port, f"/split{n}") for n in range(5))),
            ),
            30,
        )
        answers = [*burst, *split]
        pacing = paced_reads.allowance(asyncio.get_running_loop(), "first")
        assert pacing.held > 0, "the burst never filled a turn: nothing was held"
        assert pacing.waiting == 0
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    paths = [f"/n{n}" for n in range(60)] + [f"/split{n}" for n in range(5)]
    for path, answer in zip(paths, answers, strict=True):
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:80]
        assert answer.endswith(path.encode())


@pytest.mark.parametrize("anyio_backend", BACKENDS)
async def test_websocket_messages_of_many_clients_at_once_all_arrive_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(paced_reads, "FRAMES_PER_TURN", 2)
    received: dict[str, list[str]] = {}
    port = free_port()
    config = uvicorn.Config(
        await recorder(received),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        http=PacedHttpToolsProtocol,
        ws=PacedWebSocketProtocol,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    sent = {f"/c{n}": [f"c{n}-m{m}" for m in range(10)] for n in range(20)}
    try:
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
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    assert frames.held > 0, "the clients never filled a turn: nothing was held"
    assert received == sent
