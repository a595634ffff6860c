"""Webhooks through an in-process hub: signed deliveries of job events, retries recorded,
and an endpoint that hangs or fails slows nothing else."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from testfleet.hub.webhooks.dispatcher import next_attempt
from testfleet.protocol.signing import verify
from testfleet.protocol.states import RunState
from tests.support.inproc import RunningHub, eventually, one_test_job, running_hub
from tests.support.receiver import webhook_receiver

pytestmark = pytest.mark.anyio


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[RunningHub]:
    async with running_hub(tmp_path / "data") as running:
        yield running


async def register(hub: RunningHub, url: str, events: list[str], **extra: object) -> dict:
    response = await hub.api.post("/api/v1/webhooks", json={"url": url, "events": events, **extra})
    assert response.status_code == 201, response.text
    return response.json()


async def deliveries(hub: RunningHub, webhook_id: int) -> list[dict]:
    response = await hub.api.get(f"/api/v1/webhooks/{webhook_id}/deliveries")
    return response.json()["deliveries"]


async def test_job_events_are_delivered_signed_and_recorded(hub: RunningHub) -> None:
    async with webhook_receiver() as receiver:
        hook = await register(
            hub, receiver.url("/ok"), ["job.finished", "job.failed"], secret="s" * 20
        )
        assert hook["secret"] == "s" * 20
        listed = (await hub.api.get("/api/v1/webhooks")).json()["webhooks"]
        assert "secret" not in listed[0]
        agent = await hub.agent("a1")
        agent.run_tasks(lambda task: RunState.FAILED)
        job_id = await hub.start(one_test_job("hooked"))
        await hub.wait(job_id)
        await eventually(lambda: len(receiver.to("/ok")) == 2, "two deliveries")
        kinds = sorted(r.headers["x-testfleet-event"] for r in receiver.to("/ok"))
        assert kinds == ["job.failed", "job.finished"]
        for request in receiver.to("/ok"):
            headers = request.headers
            assert verify(
                "s" * 20,
                headers["x-testfleet-timestamp"],
                request.body,
                headers["x-testfleet-signature-256"],
            )
            assert not verify(
                "wrong" * 4,
                headers["x-testfleet-timestamp"],
                request.body,
                headers["x-testfleet-signature-256"],
            )
            body = json.loads(request.body)
            assert body["job"]["job_id"] == job_id and body["job"]["state"] == "failed"
            assert body["delivery_id"] == int(headers["x-testfleet-delivery"])
        found = await eventually(
            lambda: _all_delivered(hub, hook["webhook_id"]), "deliveries recorded"
        )
        assert {d["attempt_log"][0]["status_code"] for d in found} == {200}


async def _all_delivered(hub: RunningHub, webhook_id: int) -> list[dict] | None:
    found = await deliveries(hub, webhook_id)
    return found if found and all(d["state"] == "delivered" for d in found) else None


async def test_tags_and_events_choose_what_a_webhook_gets(hub: RunningHub) -> None:
    async with webhook_receiver() as receiver:
        await register(hub, receiver.url("/nightly"), ["job.finished"], tags=["nightly"])
        await register(hub, receiver.url("/failed"), ["job.failed"])
        agent = await hub.agent("a1")
        agent.run_tasks()
        await hub.wait(await hub.start({**one_test_job("plain")}))
        await hub.wait(await hub.start({**one_test_job("tagged"), "tags": ["nightly"]}))
        await eventually(lambda: len(receiver.to("/nightly")) == 1, "the tagged job's delivery")
        await hub.hub.webhooks.tick()
        assert json.loads(receiver.to("/nightly")[0].body)["job"]["name"] == "tagged"
        assert receiver.to("/failed") == []  # both completed


async def test_an_endpoint_that_hangs_or_fails_slows_nothing_else(hub: RunningHub) -> None:
    async with webhook_receiver() as receiver:
        hang = await register(hub, receiver.url("/hang"), ["job.finished"])
        fail = await register(hub, receiver.url("/fail"), ["job.finished"])
        gone = await register(hub, receiver.url("/gone"), ["job.finished"])
        await register(hub, receiver.url("/ok"), ["job.finished"])
        agent = await hub.agent("a1")
        agent.run_tasks()
        for number in range(6):
            await hub.wait(await hub.start(one_test_job(f"j{number}")))
        started = time.monotonic()
        await eventually(lambda: len(receiver.to("/ok")) == 6, "every job at the good endpoint")
        assert time.monotonic() - started < 5
        t0 = time.monotonic()
        response = await hub.api.get("/api/v1/jobs")
        assert response.status_code == 200 and time.monotonic() - t0 < 1.0
        assert 1 <= len(receiver.to("/hang")) <= 4  # at most 4 attempts at once per webhook

        failed = await eventually(
            lambda: _with_attempts(hub, fail["webhook_id"], 6), "failed attempts recorded"
        )
        for delivery in failed:
            assert delivery["state"] == "pending"  # retried later, with backoff
            assert delivery["attempt_log"][0]["status_code"] == 500
            assert "HTTP 500" in delivery["attempt_log"][0]["error"]
            next_at = datetime.fromisoformat(delivery["next_attempt_at"])
            assert next_at > datetime.fromisoformat(delivery["attempt_log"][0]["at"])
        given_up = await eventually(
            lambda: _with_attempts(hub, gone["webhook_id"], 6), "410s recorded"
        )
        assert {d["state"] for d in given_up} == {"failed"}
        hanging = await deliveries(hub, hang["webhook_id"])
        assert {d["state"] for d in hanging} == {"pending"}


async def _with_attempts(hub: RunningHub, webhook_id: int, count: int) -> list[dict] | None:
    found = await deliveries(hub, webhook_id)
    done = [d for d in found if d["attempt_log"]]
    return done if len(done) == count else None


async def test_ping_redeliver_and_bad_input(hub: RunningHub) -> None:
    async with webhook_receiver() as receiver:
        hook = await register(hub, receiver.url("/ok"), ["agent.lost"])
        ping = await hub.api.post(f"/api/v1/webhooks/{hook['webhook_id']}/ping")
        assert ping.status_code == 202 and ping.json()["event"] == "ping"
        await eventually(lambda: len(receiver.to("/ok")) == 1, "the ping")
        await eventually(lambda: _all_delivered(hub, hook["webhook_id"]), "the ping recorded")
        again = await hub.api.post(
            f"/api/v1/webhooks/deliveries/{ping.json()['delivery_id']}/redeliver"
        )
        assert again.status_code == 202
        await eventually(lambda: len(receiver.to("/ok")) == 2, "the ping again")
    bad = await hub.api.post("/api/v1/webhooks", json={"url": "ftp://x", "events": ["job.done"]})
    assert bad.status_code == 422
    locations = {e["location"] for e in bad.json()["errors"]}
    assert locations == {"/url", "/events/0"}
    short = await hub.api.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/x", "events": ["job.failed"], "secret": "short"},
    )
    assert short.status_code == 422 and short.json()["errors"][0]["location"] == "/secret"
    assert (await hub.api.get("/api/v1/webhooks/999/deliveries")).status_code == 404
    paused = await hub.api.patch(f"/api/v1/webhooks/{hook['webhook_id']}", json={"active": False})
    assert paused.json()["active"] is False
    assert (await hub.api.delete(f"/api/v1/webhooks/{hook['webhook_id']}")).status_code == 204


def test_retries_back_off_and_stop_after_a_day() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    now = created
    delays = []
    attempts = 1
    while (moment := next_attempt(created, attempts, now, 86400)) is not None:
        delays.append((moment - now).total_seconds())
        now = moment
        attempts += 1
    assert 8 < delays[0] < 12 and delays[1] > delays[0] and max(delays) <= 14400 * 1.1
    assert now - created <= timedelta(days=1) and attempts > 10
