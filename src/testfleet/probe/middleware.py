"""WSGI and ASGI middleware: a request's `drill-test-name` (or `X-Test-Name`) header names the
test it belongs to, as a coverage.py context, while the request runs.

    app = TestNameMiddleware(app)        # WSGI (Flask, Django)
    app = AsgiTestNameMiddleware(app)    # ASGI (FastAPI, Starlette)

coverage.py's contexts are process-wide: concurrent requests of different tests are counted
for the one named last. Without a running probe both pass requests through untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from typing import Any

from testfleet.protocol.coverage import TEST_NAME_HEADERS

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Scope = MutableMapping[str, Any]
AsgiApp = Callable[
    [Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]
]
_WSGI_KEYS = tuple("HTTP_" + h.upper().replace("-", "_") for h in TEST_NAME_HEADERS)
_ASGI_KEYS = tuple(h.encode() for h in TEST_NAME_HEADERS)


def _set(name: str) -> Callable[[], None] | None:
    from testfleet import probe

    running = probe.current()
    if running is None:
        return None
    previous = running.set_test(name)

    def restore() -> None:
        running.set_test(previous)

    return restore


class TestNameMiddleware:
    """WSGI middleware naming each request's test."""

    __test__ = False  # not a pytest test class

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        name = next((environ[k] for k in _WSGI_KEYS if environ.get(k)), None)
        restore = _set(str(name)) if name else None
        if restore is None:
            return self.app(environ, start_response)
        return _Restoring(self.app(environ, start_response), restore)


class _Restoring:
    """The response body; the test name is restored once it has been sent."""

    def __init__(self, body: Iterable[bytes], restore: Callable[[], None]) -> None:
        self._body = body
        self._restore = restore

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._restore()


class AsgiTestNameMiddleware:
    """ASGI middleware naming each HTTP request's test."""

    def __init__(self, app: AsgiApp) -> None:
        self.app = app

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        name = None
        if scope.get("type") == "http":
            headers = dict(scope.get("headers") or [])
            name = next((headers[k] for k in _ASGI_KEYS if headers.get(k)), None)
        restore = _set(name.decode("latin-1")) if name else None
        try:
            await self.app(scope, receive, send)
        finally:
            if restore is not None:
                restore()
