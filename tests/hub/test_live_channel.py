"""The live channel: a job's events as they are stored, and "the lab changed" notices."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from testfleet.hub.live import job_feed
from testfleet.hub.live.channel import MAX_FOLLOWED, LiveChannel
from testfleet.protocol.wire import LogChunk, RunTask
from tests.support.inproc import WAIT, RunningHub, one_test_job, running_hub

pytestmark = pytest.mark.anyio


class Client:
    """The browser's end of a live channel, in memory."""

    def __init__(self) -> None:
        self.to_hub: asyncio.Queue[str | None] = asyncio.Queue()
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive_text(self) -> str:
        text = await self.to_hub.get()
        if text is None:
            raise WebSocketDisconnect(1000)
        return text

    async def send_text(self, text: str) -> None:
        await self.received.put(json.loads(text))

    def send(self, message: dict[str, Any] | str) -> None:
        self.to_hub.put_nowait(message if isinstance(message, str) else json.dumps(message))

    async def next(self, kind: str) -> dict[str, Any]:
        """The next message of type `kind` (others before it are dropped)."""
        async with asyncio.timeout(WAIT):
            while True:
                message = await self.received.get()
                if message["type"] == kind:
                    return message


@asynccontextmanager
async def channel(hub: RunningHub) -> AsyncIterator[Client]:
    client = Client()
    live = LiveChannel(
        client,  # type: ignore[arg-type]
        feeds=hub.hub.job_feeds,
        lab=hub.hub.lab_watch,
        wait=0.2,
    )
    serving = asyncio.create_task(live.serve())
    try:
        yield client
    finally:
        client.to_hub.put_nowait(None)
        async with asyncio.timeout(WAIT):
            await serving


async def test_a_followed_job_sends_its_events_in_order_then_its_end(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub, channel(hub) as client:
        agent = await hub.agent("a1")
        job_id = await hub.start(one_test_job(steps=2))
        client.send({"type": "follow_job", "job_id": job_id})
        first = await client.next("event")
        agent.finish(await agent.expect(RunTask), output="hello\n")
        kinds = [first["event"]["kind"]]
        while True:
            message = await client.received.get()
            if message["type"] == "job_end":
                break
            kinds.append(message["event"]["kind"])
    assert kinds[0] == "job_queued" and kinds[-1] == "job_finished"
    assert kinds.count("log") == 2 and "step_finished" in kinds
    assert message == {"type": "job_end", "job_id": job_id, "state": "completed"}


async def test_following_resumes_after_the_last_event_seen(tmp_path: Path) -> None:
    async with running_hub(tmp_path, max_running_jobs=0) as hub, channel(hub) as client:
        job_id = await hub.start(one_test_job())
        await hub.api.post(f"/api/v1/jobs/{job_id}/stop")
        events = (await hub.api.get(f"/api/v1/jobs/{job_id}/events")).json()["events"]
        client.send({"type": "follow_job", "job_id": job_id, "after": events[0]["id"]})
        rest = [await client.next("event") for _ in events[1:]]
        end = await client.next("job_end")
    assert [e["event"]["id"] for e in rest] == [e["id"] for e in events[1:]]
    assert end["state"] == "cancelled"


async def test_an_unknown_job_ends_at_once(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub, channel(hub) as client:
        client.send({"type": "follow_job", "job_id": 999})
        assert (await client.next("job_end"))["state"] == "deleted"


async def test_the_lab_watch_says_what_changed(tmp_path: Path) -> None:
    async with running_hub(tmp_path, max_running_jobs=0) as hub, channel(hub) as client:
        client.send({"type": "watch_lab"})
        first = await client.next("lab_changed")
        await hub.start(one_test_job())
        jobs = await client.next("lab_changed")
        await hub.agent("a1")
        inventory = await client.next("lab_changed")
    assert first["topics"] == [
        "coverage",
        "inventory",
        "jobs",
        "plans",
        "schedules",
        "sessions",
        "webhooks",
    ]
    assert "jobs" in jobs["topics"]
    assert "inventory" in inventory["topics"]


async def next_topics(client: Client, topic: str) -> list[str]:
    """The topics of the next notice naming `topic` (notices of other changes are skipped)."""
    while True:
        topics: list[str] = (await client.next("lab_changed"))["topics"]
        if topic in topics:
            return topics


async def test_schedules_webhooks_and_deletions_are_topics_too(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub, channel(hub) as client:
        client.send({"type": "watch_lab"})
        await client.next("lab_changed")
        job_id = await hub.start(one_test_job())
        agent = await hub.agent("a1")
        agent.run_tasks()
        await hub.wait(job_id)
        schedule = {"name": "s", "cron": "0 2 * * *", "descriptor": one_test_job()}
        created = (await hub.api.post("/api/v1/schedules", json=schedule)).json()
        await next_topics(client, "schedules")
        await hub.api.patch(f"/api/v1/schedules/{created['schedule_id']}", json={"enabled": False})
        await next_topics(client, "schedules")
        webhook = {"url": "http://127.0.0.1:9/hook", "events": ["job.failed"]}
        hook = (await hub.api.post("/api/v1/webhooks", json=webhook)).json()
        assert "schedules" not in await next_topics(client, "webhooks")
        await hub.api.patch(f"/api/v1/webhooks/{hook['webhook_id']}", json={"active": False})
        await next_topics(client, "webhooks")
        assert (await hub.api.delete(f"/api/v1/jobs/{job_id}")).status_code == 202
        await next_topics(client, "jobs")


@pytest.mark.parametrize(
    ("message", "code", "location"),
    [
        ("not json", "invalid_message", "/"),
        ({"type": "dance"}, "invalid_message", "/"),
        ({"type": "follow_job", "job_id": 0}, "invalid_message", "/job_id"),
        ({"type": "follow_job"}, "invalid_message", "/job_id"),
        ("x" * 5000, "too_large", ""),
    ],
)
async def test_a_bad_message_gets_an_error_and_the_channel_stays(
    tmp_path: Path, message: Any, code: str, location: str
) -> None:
    async with running_hub(tmp_path) as hub, channel(hub) as client:
        client.send(message)
        error = await client.next("error")
        client.send({"type": "follow_job", "job_id": 5})
        still = await client.next("job_end")
    assert (error["code"], error["fatal"]) == (code, False)
    assert error["location"] == location
    assert still["job_id"] == 5


async def test_a_channel_follows_a_bounded_number_of_jobs(tmp_path: Path) -> None:
    async with running_hub(tmp_path, max_running_jobs=0) as hub, channel(hub) as client:
        ids = [await hub.start(one_test_job()) for _ in range(MAX_FOLLOWED + 1)]
        for job_id in ids:
            client.send({"type": "follow_job", "job_id": job_id})
        error = await client.next("error")
    assert error["code"] == "too_many"


async def test_followers_of_one_job_share_one_reader(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1")
        job_id = await hub.start(one_test_job())
        task = await agent.expect(RunTask)
        async with channel(hub) as one, channel(hub) as two, channel(hub) as three:
            for client in (one, two, three):
                client.send({"type": "follow_job", "job_id": job_id})
                await client.next("event")
            readers_while_following = len(hub.hub.job_feeds)
            agent.finish(task, output="shared\n")
            ends = [await client.next("job_end") for client in (one, two, three)]
        await asyncio.sleep(0)
        readers_after = len(hub.hub.job_feeds)
    assert readers_while_following == 1
    assert [end["state"] for end in ends] == ["completed"] * 3
    assert readers_after == 0


async def test_a_follower_behind_the_buffer_catches_up_from_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_feed, "BUFFER", 3)
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1")
        job_id = await hub.start(one_test_job())
        task = await agent.expect(RunTask)
        async with channel(hub) as ahead:
            ahead.send({"type": "follow_job", "job_id": job_id})
            seen = [(await ahead.next("event"))["event"]["id"]]
            for n in range(25):  # faster than `ahead` reads: it falls behind the buffer of 3
                agent.event(LogChunk(seq=1, task_id=task.task_id, step_index=0, text=f"{n}\n"))
            agent.finish(task)
            while (message := await ahead.received.get())["type"] == "event":
                seen.append(message["event"]["id"])
            stored = (await hub.api.get(f"/api/v1/jobs/{job_id}/events")).json()["events"]
            async with channel(hub) as behind:
                behind.send({"type": "follow_job", "job_id": job_id, "kinds": ["log"]})
                got = []
                while (message := await behind.received.get())["type"] == "event":
                    got.append(message["event"]["id"])
    assert seen == [e["id"] for e in stored]
    assert got == [e["id"] for e in stored if e["kind"] == "log"]
    assert len(got) == 25
