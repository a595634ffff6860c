"""An agent's connection: registration, events stored once and acknowledged, bad frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from testfleet.protocol.states import RunState
from testfleet.protocol.wire import (
    Ack,
    Error,
    Heartbeat,
    LogChunk,
    Register,
    RunTask,
    StopTask,
    TaskStarted,
)
from testfleet.store import events as event_store
from tests.support.inproc import FakeAgent, eventually, one_test_job, running_hub

pytestmark = pytest.mark.anyio


async def test_an_event_sent_twice_is_stored_once(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1")
        job_id = await hub.start(one_test_job())
        task = await agent.expect(RunTask)
        log = agent.event(LogChunk(seq=1, task_id=task.task_id, step_index=0, text="once\n"))
        await agent.acked()
        agent.send(log)  # a resend after a reconnect, say
        agent.send(Heartbeat())
        ack = await agent.expect(Ack)
        logs = await hub.api.get(f"/api/v1/jobs/{job_id}/logs")

    assert ack.seq == log.seq
    assert logs.text == "once\n"


async def test_an_event_for_an_unknown_task_is_answered_with_an_error(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1")
        agent.event(TaskStarted(seq=1, task_id=4242))
        error = await agent.expect(Error)

    assert (error.code, error.fatal) == ("unknown_task", False)
    assert "4242" in error.message


@pytest.mark.parametrize(
    ("frame", "code", "location"),
    [
        ("not json", "malformed_message", None),
        ('{"type": "NOPE"}', "unknown_message", "/type"),
        ('["a list"]', "unknown_message", "/type"),
        (
            '{"type": "LOG", "seq": 1, "task_id": 1, "step_index": -1, "text": ""}',
            "malformed_message",
            "/step_index",
        ),
    ],
)
async def test_a_bad_frame_gets_an_error_and_the_connection_goes_on(
    tmp_path: Path, frame: str, code: str, location: str | None
) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1")
        agent.send_raw(frame)
        error = await agent.expect(Error)
        job_id = await hub.start(one_test_job())
        task = await agent.expect(RunTask)  # still served
        agent.finish(task)
        status = await hub.wait(job_id)

    assert (error.code, error.location, error.fatal) == (code, location, False)
    assert status.state == "completed"


async def test_a_second_register_on_a_connection_is_refused(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1")
        agent.send(Register(name="a1", instance_id="x", version="t", wire_version=1))
        error = await agent.expect(Error)

    assert error.code == "already_registered"


async def test_another_process_may_not_take_a_connected_agents_name(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        await hub.agent("a1")
        impostor = FakeAgent(hub.hub, "a1", [])
        with pytest.raises(AssertionError, match="name_in_use"):
            await impostor.connect()
        await impostor.close()


async def test_a_reconnecting_agent_is_told_to_stop_a_task_the_hub_has_ended(
    tmp_path: Path,
) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1")
        job_id = await hub.start(one_test_job())
        task = await agent.expect(RunTask)
        agent.finish(task)
        await hub.wait(job_id)
        await agent.disconnect()
        await agent.connect(held_tasks=[task.task_id, 999])
        stops = [await agent.expect(StopTask), await agent.expect(StopTask)]

    assert sorted(s.task_id for s in stops) == sorted([task.task_id, 999])


async def test_the_events_of_a_job_carry_the_agent_name(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1")
        job_id = await hub.start(one_test_job())
        task = await agent.expect(RunTask)
        agent.finish(task, RunState.PASSED, output="x\n")
        await hub.wait(job_id)
        events = await hub.hub.store.read(event_store.list_events, job_id)

    by_agent = {e.kind: e.agent_name for e in events if e.agent_id is not None}
    assert by_agent["log"] == "a1"
    assert by_agent["task_finished"] == "a1"
    assert next(e for e in events if e.kind == "job_queued").agent_name is None


async def test_an_agent_that_goes_silent_is_lost(tmp_path: Path) -> None:
    async with running_hub(tmp_path, agent_timeout=0.6) as hub:
        agent = await hub.agent("a1")
        agent.go_silent()

        async def offline() -> bool:
            agents = (await hub.api.get("/api/v1/agents")).json()["agents"]
            return agents[0]["state"] == "offline"

        await eventually(offline, "the agent to be marked offline", within=5)
        devices = (await hub.api.get("/api/v1/devices")).json()["devices"]

    assert [d["state"] for d in devices] == ["offline"]
