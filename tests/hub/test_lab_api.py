"""The API the web UI reads: the overview, job-list and event filters, devices' claims."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from testfleet.protocol.states import RunState
from testfleet.protocol.wire import LogChunk, RunTask
from tests.support.inproc import one_test_job, running_hub

pytestmark = pytest.mark.anyio


async def test_the_overview_counts_agents_devices_jobs_and_the_last_day(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1", slots=3)
        await hub.agent("a2", slots=1)
        for state in (RunState.PASSED, RunState.FAILED):
            job_id = await hub.start(one_test_job())
            agent.finish(await agent.expect(RunTask), state)
            await hub.wait(job_id)
        held = await hub.start(one_test_job())
        task = await agent.expect(RunTask)  # not finished yet: its device stays busy
        answer = (await hub.api.get("/api/v1/overview")).json()
        agent.finish(task)
        await hub.wait(held)

    assert answer["agents"] == {"online": 2, "offline": 0}
    assert answer["devices"] == {"free": 3, "busy": 1, "offline": 0}
    assert answer["jobs"]["running"] == 1 and answer["jobs"]["queued"] == 0
    assert answer["finished_last_hour"] == {"completed": 1, "failed": 1, "cancelled": 0}
    series = answer["throughput"]
    assert len(series) == 24 and answer["bucket_seconds"] == 3600
    last = series[-1]
    assert (last["completed"], last["failed"], last["cancelled"]) == (1, 1, 0)
    assert last["mean_seconds"] is not None and 0 <= last["mean_seconds"] < 10
    assert last["max_seconds"] >= last["mean_seconds"]
    assert all(p["completed"] + p["failed"] == 0 for p in series[:-1])
    starts = [datetime.fromisoformat(p["start"]) for p in series]
    assert starts == sorted(starts) and starts[-1] <= datetime.now(UTC)


async def test_the_overview_refuses_a_window_it_cannot_draw(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        for query, where in (("hours=0", "query.hours"), ("buckets=5000", "query.buckets")):
            answer = await hub.api.get(f"/api/v1/overview?{query}")
            assert answer.status_code == 422
            assert answer.json()["errors"][0]["location"] == where


async def test_jobs_are_found_by_part_of_their_name_in_any_case(tmp_path: Path) -> None:
    async with running_hub(tmp_path, max_running_jobs=0) as hub:
        ids = {
            name: await hub.start(one_test_job(name))
            for name in ("Nightly-A", "nightly-b", "x_y", "xzy")
        }
        found = await hub.api.get("/api/v1/jobs", params={"name_contains": "NIGHTLY"})
        literal = await hub.api.get("/api/v1/jobs", params={"name_contains": "x_"})
        exact = await hub.api.get("/api/v1/jobs", params={"name": "nightly-b"})
        since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        recent = await hub.api.get("/api/v1/jobs", params={"created_after": since})
    assert [j["job_id"] for j in found.json()["jobs"]] == [ids["nightly-b"], ids["Nightly-A"]]
    assert [j["job_id"] for j in literal.json()["jobs"]] == [ids["x_y"]]
    assert [j["name"] for j in exact.json()["jobs"]] == ["nightly-b"]
    assert len(recent.json()["jobs"]) == 4


async def test_the_newest_events_of_one_task_and_where_to_follow_on(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1", slots=2)
        job_id = await hub.start(one_test_job(devices={"count": 2}))
        first, second = await agent.expect(RunTask), await agent.expect(RunTask)
        for n in range(5):
            for task in (first, second):
                agent.event(
                    LogChunk(
                        seq=1, task_id=task.task_id, step_index=0, text=f"{task.task_id}:{n}\n"
                    )
                )
        agent.finish(first)
        agent.finish(second)
        await hub.wait(job_id)
        base = f"/api/v1/jobs/{job_id}/events"
        tail = (
            await hub.api.get(
                base, params={"kind": "log", "tail": True, "limit": 3, "task_id": first.task_id}
            )
        ).json()
        everything = (await hub.api.get(base, params={"limit": 10_000})).json()
        quiet = (await hub.api.get(base, params={"kind": "nothing", "tail": True})).json()
        head = (await hub.api.get(base, params={"kind": "log", "limit": 2})).json()
    texts = [e["data"]["text"] for e in tail["events"]]
    assert texts == [f"{first.task_id}:{n}\n" for n in (2, 3, 4)]
    assert {e["task_id"] for e in tail["events"]} == {first.task_id}
    assert tail["next_after"] == tail["events"][-1]["id"]
    assert quiet["events"] == [] and quiet["next_after"] == everything["events"][-1]["id"]
    assert head["events"][0]["data"]["text"].endswith(":0\n")


async def test_a_busy_device_says_since_when_its_holder_has_it(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1")
        before = datetime.now(UTC)
        job_id = await hub.start(one_test_job())
        task = await agent.expect(RunTask)
        (busy,) = (await hub.api.get("/api/v1/devices")).json()["devices"]
        agent.finish(task)
        await hub.wait(job_id)
        (free,) = (await hub.api.get("/api/v1/devices")).json()["devices"]
    assert (busy["state"], busy["holder_job_id"]) == ("busy", job_id)
    assert before <= datetime.fromisoformat(busy["claimed_at"]) <= datetime.now(UTC)
    assert (free["state"], free["holder_job_id"], free["claimed_at"]) == ("free", None, None)
