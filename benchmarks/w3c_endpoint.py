"""A minimal W3C-shaped WebDriver endpoint for measuring the gateway, not a browser: it answers
`POST /session` with a new session id and every other request with `{"value": null}` (a
`GET .../title` with a title), over keep-alive HTTP/1.1, parsed with httptools.

    python -m benchmarks.w3c_endpoint --port 9515
"""

from __future__ import annotations

import argparse
import asyncio
import uuid

import httptools


def _response(body: bytes) -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\n"
        b"content-length: %d\r\n\r\n" % len(body)
    )
    return head + body


NULL = _response(b'{"value":null}')
TITLE = _response(b'{"value":"Benchmark page"}')


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_message_complete(self) -> None:
        assert self.transport is not None
        method = self.parser.get_method()
        if method == b"POST" and self.url.rstrip(b"/").endswith(b"/session"):
            session = uuid.uuid4().hex.encode()
            body = b'{"value":{"sessionId":"%s","capabilities":{"browserName":"bench"}}}' % session
            self.transport.write(_response(body))
        elif self.url.endswith(b"/title"):
            self.transport.write(TITLE)
        else:
            self.transport.write(NULL)


async def serve(port: int) -> None:
    """Serve until cancelled."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Protocol, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(serve(args.port))
    except ImportError:
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
