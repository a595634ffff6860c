"""The asyncio client against a fake hub (httpx.MockTransport)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from testfleet.client import ApiError, AsyncClient, HubUnreachable, WaitTimeout
from testfleet.client import settings as client_settings
from testfleet.protocol.states import JobState

HUB = "http://hub.test:8470"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def answer(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)


def events_body(*ids: int, end: str | None = None) -> bytes:
    parts = []
    for event_id in ids:
        record = {
            "id": event_id,
            "kind": "step_started",
            "job_id": 7,
            "at": "2024-05-01T12:00:00Z",
            "data": {"step_index": 0},
        }
        parts.append(f"id: {event_id}\nevent: step_started\ndata: {json.dumps(record)}\n\n")
    if end:
        parts.append(f'event: end\ndata: {{"state": "{end}"}}\n\n')
    return "".join(parts).encode()


def stream(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"Content-Type": "text/event-stream"})


async def test_start_status_and_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["X-Testfleet-Api-Version"] == "1"
        if request.method == "POST":
            return answer(201, {"job_id": 3, "server_id": "h"})
        return answer(404, {"code": "not_found", "message": "job 9 does not exist"})

    async with AsyncClient(HUB, transport=httpx.MockTransport(handler)) as hub:
        assert await hub.start("name: x\n") == 3
        with pytest.raises(ApiError) as caught:
            await hub.status(9)
    assert caught.value.status == 404


async def test_follow_reopens_and_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_settings, "backoff", lambda failures: 0.0)
    bodies = {"0": events_body(1), "1": events_body(2, end="cancelled")}

    def handler(request: httpx.Request) -> httpx.Response:
        return stream(bodies[request.url.params["after"]])

    async with AsyncClient(HUB, transport=httpx.MockTransport(handler)) as hub:
        events = hub.follow(7)
        ids = [event.id async for event in events]
    assert ids == [1, 2]
    assert events.final_state is JobState.CANCELLED


async def test_iter_jobs_and_wait() -> None:
    job = {
        "job_id": 1,
        "name": "j",
        "state": "running",
        "requestor": "me",
        "tags": [],
        "created_at": "2024-05-01T12:00:00Z",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/jobs":
            cursor = request.url.params.get("cursor")
            return answer(
                200, {"server_id": "h", "jobs": [job], "next_cursor": None if cursor else "next"}
            )
        return answer(
            200, {**job, "server_id": "h", "runs_requested": 1, "runs": [], "descriptor": {}}
        )

    async with AsyncClient(HUB, transport=httpx.MockTransport(handler)) as hub:
        assert len([j async for j in hub.iter_jobs()]) == 2
        with pytest.raises(WaitTimeout):
            await hub.wait(1, timeout=0.1, interval=0.02)


async def test_unreachable() -> None:
    async with AsyncClient("http://127.0.0.1:1") as hub:
        with pytest.raises(HubUnreachable, match=r"127\.0\.0\.1:1"):
            await hub.version()
        with pytest.raises(HubUnreachable):
            async for _ in hub.follow(1):
                pass


def public_methods(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_") and callable(getattr(cls, name))}


def test_the_async_client_has_every_method_of_the_blocking_one() -> None:
    from testfleet.client import Client

    blocking = public_methods(Client) - {"close"}  # `aclose` is its asyncio name
    assert blocking - public_methods(AsyncClient) == set()


async def test_sessions_and_schedules_are_awaitable() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.url.path.endswith("/schedules"):
            return answer(200, {"server_id": "h", "schedules": []})
        return answer(200, {"server_id": "h", "sessions": [], "next_cursor": None})

    async with AsyncClient(HUB, transport=httpx.MockTransport(handler)) as hub:
        assert (await hub.sessions(state="all")).sessions == []
        assert (await hub.schedules()).schedules == []
    assert seen == ["GET /api/v1/sessions", "GET /api/v1/schedules"]


async def test_download_streams_and_hashes() -> None:
    import hashlib
    import io

    body = b"x" * 3_000_000

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/missing"):
            return answer(404, {"code": "not_found", "message": "no such artifact"})
        return httpx.Response(200, content=body)

    sink = io.BytesIO()
    async with AsyncClient(HUB, transport=httpx.MockTransport(handler)) as hub:
        digest = await hub.download("/api/v1/artifacts/1/file", sink)
        with pytest.raises(ApiError):
            await hub.download("/api/v1/artifacts/missing", io.BytesIO())
    assert digest == hashlib.sha256(body).hexdigest()
    assert sink.getvalue() == body
