"""The gateway's forwarding to nodes against a real socket server that answers as told: pooled
keep-alive connections, a connection the node closed while idle, streamed and chunked answers in
both directions, answers that break off, and requests that never reach a node."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httptools
import pytest

from testfleet.hub.gateway import node_http
from testfleet.hub.gateway.proxy import SMALL_BODY, Answer, NodeClient, NodeUnreachable
from tests.support.processes import free_port

pytestmark = pytest.mark.anyio

Reply = Callable[["Request"], list[bytes | float | None]]
"""What the node does for a request: bytes to write, a pause in seconds, None to close."""


@dataclass
class Request:
    method: str = ""
    target: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    nth: int = 1
    """Which request of its connection this is."""


@dataclass
class Node:
    url: str
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)


def answer(body: bytes = b'{"value":null}', status: str = "200 OK", *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"content-length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class _Parse:
    def __init__(self) -> None:
        self.request = Request()
        self.done = False
        self.parser = httptools.HttpRequestParser(self)

    def on_url(self, url: bytes) -> None:
        self.request.target += url.decode()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.request.headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.request.body += body

    def on_message_complete(self) -> None:
        self.request.method = self.parser.get_method().decode()
        self.done = True


@asynccontextmanager
async def node(reply: Reply) -> AsyncIterator[Node]:
    port = free_port()
    state = Node(f"http://127.0.0.1:{port}")

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        state.writers.append(writer)
        parse = _Parse()
        try:
            while data := await reader.read(65536):
                parse.parser.feed_data(data)
                if not parse.done:
                    continue
                state.requests.append(parse.request)
                nth = parse.request.nth
                for step in reply(parse.request):
                    if step is None:
                        writer.close()
                        return
                    if isinstance(step, float):
                        await asyncio.sleep(step)
                        continue
                    writer.write(step)
                    await writer.drain()
                parse = _Parse()
                parse.request.nth = nth + 1
        except (ConnectionError, httptools.HttpParserError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", port)
    async with server:
        yield state
    for writer in state.writers:
        writer.close()


class Sent:
    """What the gateway sent to its client through ASGI."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.messages[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])


async def forward(
    client: NodeClient,
    url: str,
    method: str = "GET",
    body: bytes | AsyncIterator[bytes] = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    length: int | None = None,
) -> tuple[Answer, Sent]:
    sent = Sent()
    answered = await client.forward(method, url, headers or [], body, length, sent)
    return answered, sent


async def test_commands_share_one_kept_alive_connection() -> None:
    async with node(lambda r: [answer(b'{"value":"%s"}' % r.target.encode())]) as n:
        client = NodeClient()
        try:
            for i in range(5):
                answered, sent = await forward(client, f"{n.url}/wd/session/s{i}/title?x=1")
                assert answered == Answer(200)
                assert sent.body == b'{"value":"/wd/session/s%d/title?x=1"}' % i
                assert sent.headers[b"content-length"] == str(len(sent.body)).encode()
        finally:
            await client.close()
    assert n.connections == 1
    assert n.requests[0].headers["host"] == n.url.removeprefix("http://")


async def test_an_idle_connection_the_node_closed_is_replaced_once() -> None:
    async with node(lambda r: [answer(), None]) as n:  # answers, then closes every connection
        client = NodeClient()
        try:
            for _ in range(3):
                answered, sent = await forward(client, f"{n.url}/session/s/url", "POST", b"{}")
                assert answered.status == 200 and sent.body == b'{"value":null}'
                await asyncio.sleep(0.05)
        finally:
            await client.close()
    assert n.connections == 3
    assert [r.body for r in n.requests] == [b"{}"] * 3


async def test_a_kept_connection_that_breaks_before_answering_is_replaced_once() -> None:
    # The node closes a connection when a second request comes on it, as a node does that
    # closed it while idle just as the request left.
    async with node(lambda r: [answer()] if r.nth == 1 else [None]) as n:
        client = NodeClient()
        try:
            for _ in range(3):
                answered, _ = await forward(client, f"{n.url}/session/s/url")
                assert answered.status == 200
        finally:
            await client.close()
    assert n.connections == 3  # a GET may go again; a POST may not (below)
    assert [r.nth for r in n.requests] == [1, 2, 1, 2, 1]


async def test_a_new_connection_that_breaks_is_not_tried_again() -> None:
    async with node(lambda r: [None]) as n:
        client = NodeClient()
        try:
            with pytest.raises(NodeUnreachable):
                await forward(client, f"{n.url}/session/s/url", "POST", b"{}")
        finally:
            await client.close()
    assert n.connections == 1


async def test_hop_by_hop_headers_and_the_hubs_credentials_stay_behind() -> None:
    async with node(
        lambda r: [answer(b"{}", "200 OK", "connection: keep-alive", "x-node: 1")]
    ) as n:
        client = NodeClient()
        user = n.url.replace("http://", "http://me:p%40ss@")
        try:
            _, sent = await forward(
                client,
                f"{user}/session/s/title",
                headers=[
                    (b"authorization", b"Bearer hub-token"),
                    (b"connection", b"keep-alive"),
                    (b"expect", b"100-continue"),
                    (b"x-client", b"yes"),
                ],
            )
        finally:
            await client.close()
    seen = n.requests[0].headers
    assert seen["authorization"] == "Basic " + base64.b64encode(b"me:p@ss").decode()
    assert seen["x-client"] == "yes"
    assert "connection" not in seen and "expect" not in seen
    assert sent.headers[b"x-node"] == b"1" and b"connection" not in sent.headers


async def test_a_large_answer_is_streamed_in_pieces() -> None:
    big = bytes(range(256)) * (3 * SMALL_BODY // 256)
    async with node(lambda r: [answer(big)]) as n:
        client = NodeClient()
        try:
            answered, sent = await forward(client, f"{n.url}/session/s/screenshot")
            again, _ = await forward(client, f"{n.url}/session/s/title")
        finally:
            await client.close()
    assert answered.status == 200 and again.status == 200
    assert sent.body == big
    assert sent.headers[b"content-length"] == str(len(big)).encode()
    assert len(sent.messages) > 3  # head, pieces, end
    assert sent.messages[-1] == {"type": "http.response.body", "body": b""}
    assert n.connections == 1


async def test_a_chunked_answer_is_passed_on_and_its_error_named() -> None:
    chunks = [b'{"value":{"error":', b'"no such element"', b',"message":"x"}}']
    framed = b"".join(b"%x\r\n%b\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    head = b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n"
    async with node(lambda r: [head, framed[:20], 0.02, framed[20:]]) as n:
        client = NodeClient()
        try:
            answered, sent = await forward(client, f"{n.url}/session/s/element", "POST", b"{}")
        finally:
            await client.close()
    assert sent.status == 404
    assert sent.body == b"".join(chunks)
    assert b"transfer-encoding" not in sent.headers  # the server frames it again
    assert answered.status == 404 and b"no such element" in answered.head


async def test_an_answer_ended_by_closing_the_connection_is_whole() -> None:
    async with node(lambda r: [b"HTTP/1.1 200 OK\r\n\r\n", b'{"value":', 0.02, b"1}", None]) as n:
        client = NodeClient()
        try:
            _, sent = await forward(client, f"{n.url}/session/s/title")
            _, again = await forward(client, f"{n.url}/session/s/title")
        finally:
            await client.close()
    assert sent.body == again.body == b'{"value":1}'
    assert n.connections == 2


async def test_a_continue_before_the_answer_is_skipped() -> None:
    async with node(lambda r: [b"HTTP/1.1 100 Continue\r\n\r\n", answer(b'{"value":2}')]) as n:
        client = NodeClient()
        try:
            _, sent = await forward(client, f"{n.url}/session/s/url", "POST", b"{}")
        finally:
            await client.close()
    assert sent.status == 200 and sent.body == b'{"value":2}'


async def test_a_streamed_request_body_reaches_the_node_whole() -> None:
    parts = [b"x" * 70_000, b"", b"y" * 5]

    async def body() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    async with node(lambda r: [answer(str(len(r.body)).encode())]) as n:
        client = NodeClient()
        try:
            _, chunked = await forward(client, f"{n.url}/session/s/se/file", "POST", body())
            _, sized = await forward(
                client, f"{n.url}/session/s/se/file", "POST", body(), length=70_005
            )
        finally:
            await client.close()
    assert chunked.body == sized.body == b"70005"
    assert n.requests[0].headers["transfer-encoding"] == "chunked"
    assert n.requests[1].headers["content-length"] == "70005"
    assert n.requests[0].body == n.requests[1].body == b"".join(parts)


async def test_an_answer_that_breaks_off_is_left_unfinished(
    caplog: pytest.LogCaptureFixture,
) -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (SMALL_BODY * 2)
    async with node(lambda r: [head, b"z" * SMALL_BODY, None]) as n:
        client = NodeClient()
        try:
            with caplog.at_level(logging.WARNING):
                answered, sent = await forward(client, f"{n.url}/session/s/screenshot")
        finally:
            await client.close()
    assert answered.status == 502
    assert sent.status == 200 and len(sent.body) == SMALL_BODY
    # No last body message: the server closes the client's connection, which then knows
    # the answer was cut.
    assert all(m.get("more_body") for m in sent.messages[1:])
    assert "broke off" in caplog.text


async def test_a_command_that_timed_out_is_not_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(node_http, "READ_TIMEOUT", 0.3)
    async with node(lambda r: [answer()] if r.nth == 1 else [1.0, answer()]) as n:
        client = NodeClient()
        try:
            await forward(client, f"{n.url}/session/s/url", "POST", b"{}")
            with pytest.raises(NodeUnreachable, match="no answer"):
                await forward(client, f"{n.url}/session/s/url", "POST", b"{}")
        finally:
            await client.close()
    assert len(n.requests) == 2


async def test_a_post_the_node_took_and_dropped_is_not_sent_again() -> None:
    async with node(lambda r: [answer()] if r.nth == 1 else [0.05, None]) as n:
        client = NodeClient()
        try:
            await forward(client, f"{n.url}/session/s/element/e/click", "POST", b"{}")
            with pytest.raises(NodeUnreachable):
                await forward(client, f"{n.url}/session/s/element/e/click", "POST", b"{}")
        finally:
            await client.close()
    assert len(n.requests) == 2  # clicked once each, never twice


async def test_a_cut_answer_framed_by_close_is_not_taken_for_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(node_http, "READ_TIMEOUT", 0.3)
    async with node(lambda r: [b"HTTP/1.1 200 OK\r\n\r\n", b'{"value":"cut', 2.0]) as n:
        client = NodeClient()
        try:
            answered, sent = await forward(client, f"{n.url}/session/s/title")
        finally:
            await client.close()
    assert answered.status == 502 and sent.body == b'{"value":"cut'
    assert all(m.get("more_body") for m in sent.messages[1:])


async def test_bytes_after_the_answer_spoil_the_connection() -> None:
    extra = answer(b'{"value":"STALE"}')
    spill = [answer(b'{"value":1}') + extra]
    async with node(lambda r: spill if "/a/" in r.target else [answer()]) as n:
        client = NodeClient()
        try:
            _, first = await forward(client, f"{n.url}/session/a/title")
            _, second = await forward(client, f"{n.url}/session/b/title")
        finally:
            await client.close()
    assert first.body == b'{"value":1}' and second.body == b'{"value":null}'
    assert n.connections == 2


async def test_an_answer_to_nothing_closes_an_idle_connection() -> None:
    async with node(lambda r: [answer(), 0.05, answer(b'{"value":"LATE"}')]) as n:
        client = NodeClient()
        try:
            await forward(client, f"{n.url}/session/a/title")
            await asyncio.sleep(0.2)
            _, sent = await forward(client, f"{n.url}/session/b/title")
        finally:
            await client.close()
    assert sent.body == b'{"value":null}' and n.connections == 2


async def test_idle_connections_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node_http, "IDLE_TIMEOUT", 0.2)
    async with node(lambda r: [0.05, answer()]) as n:
        client = NodeClient()
        try:
            await asyncio.gather(*(forward(client, f"{n.url}/session/s/title") for _ in range(5)))
            await asyncio.sleep(0.3)
            await forward(client, f"{n.url}/session/s/title")
            await asyncio.sleep(0.3)
            await forward(client, f"{n.url}/session/s/title")  # sweeps the expired ones
            assert client._pool is not None
            open_ones = [c for q in client._pool._idle.values() for c in q if not c.closed]
            assert len(open_ones) == 1
        finally:
            await client.close()


async def test_an_early_answer_to_a_streamed_body_is_passed_on() -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(200):
            yield b"x" * 65536
            await asyncio.sleep(0)

    too_big = answer(b'{"value":{"error":"too big"}}', "413 Payload Too Large", "connection: close")
    async with node(lambda r: [too_big, None]) as n:
        client = NodeClient()
        try:
            answered, sent = await forward(client, f"{n.url}/session/s/se/file", "POST", body())
        finally:
            await client.close()
    assert answered.status == 413 and sent.status == 413 and b"too big" in sent.body


@pytest.mark.parametrize(
    "steps",
    [[None], [b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", None], [b"NOT HTTP\r\n\r\n"]],
    ids=["closed", "short", "garbage"],
)
async def test_a_node_that_fails_before_answering_is_unreachable(steps: list[Any]) -> None:
    async with node(lambda r: steps) as n:
        client = NodeClient()
        try:
            with pytest.raises(NodeUnreachable, match=n.url):
                await forward(client, f"{n.url}/session/s/title")
        finally:
            await client.close()


async def test_no_node_listening_is_unreachable() -> None:
    client = NodeClient()
    try:
        with pytest.raises(NodeUnreachable, match="ConnectionRefused"):
            await forward(client, f"http://127.0.0.1:{free_port()}/session/s/title")
    finally:
        await client.close()


async def test_a_silent_node_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node_http, "READ_TIMEOUT", 0.2)
    async with node(lambda r: [5.0]) as n:
        client = NodeClient()
        try:
            with pytest.raises(NodeUnreachable, match=r"no answer for 0\.2 s"):
                await forward(client, f"{n.url}/session/s/title")
        finally:
            await client.close()


async def test_head_requests_are_answered_without_a_body() -> None:
    async with node(lambda r: [b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n"]) as n:
        client = NodeClient()
        try:
            answered, sent = await forward(client, f"{n.url}/session/s/title", "HEAD")
        finally:
            await client.close()
    assert answered.status == 200 and sent.body == b""


@pytest.mark.parametrize(
    ("url", "origin", "target"),
    [
        (
            "http://127.0.0.1:4723/wd/hub/session/1",
            ("http", "127.0.0.1", 4723),
            b"/wd/hub/session/1",
        ),
        ("https://cloud.example/session?x=1", ("https", "cloud.example", 443), b"/session?x=1"),
        ("http://[::1]:9515", ("http", "::1", 9515), b"/"),
        ("http://node", ("http", "node", 80), b"/"),
    ],
)
def test_node_urls_are_split(url: str, origin: node_http.Origin, target: bytes) -> None:
    assert node_http.split_url(url)[:2] == (origin, target)


@pytest.mark.parametrize("url", ["ftp://node/x", "node:4444/x", "http://:80/x", "http://h:x/"])
def test_urls_that_name_no_node_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"URL|host"):
        node_http.split_url(url)
