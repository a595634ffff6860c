"""Input that used to cost the hub memory, a 500 or a broken connection: refused with a 4xx
or an ERROR that says what and where, creating nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from testfleet.protocol.wire import Error, RunTask
from tests.support.hostile import ALIAS_BOMB
from tests.support.inproc import RunningHub, one_test_job, running_hub

pytestmark = pytest.mark.anyio


async def job_count(hub: RunningHub) -> int:
    return len((await hub.api.get("/api/v1/jobs")).json()["jobs"])


async def test_a_yaml_alias_bomb_is_refused_and_creates_nothing(tmp_path: Path) -> None:
    assert len(ALIAS_BOMB) < 1000
    async with running_hub(tmp_path) as hub:
        response = await hub.api.post(
            "/api/v1/jobs", content=ALIAS_BOMB, headers={"Content-Type": "application/yaml"}
        )
        jobs = await job_count(hub)

    assert response.status_code == 422
    assert "more than 100000 values" in response.json()["message"]
    assert jobs == 0


async def test_a_streamed_body_past_the_limit_is_413_before_it_is_read_whole(
    tmp_path: Path,
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(2000):  # 200 MB if it were all read
            sent += 1
            yield b" " * 100_000

    async with running_hub(tmp_path) as hub:
        response = await hub.api.post(
            "/api/v1/jobs", content=chunks(), headers={"Content-Type": "application/json"}
        )
        declared = await hub.api.post(
            "/api/v1/jobs", content=b"{}", headers={"Content-Length": str(10**9)}
        )

    assert (response.status_code, response.json()["code"]) == (413, "too_large")
    assert sent < 100  # it stopped reading soon after the limit
    assert (declared.status_code, declared.json()["code"]) == (413, "too_large")


@pytest.mark.parametrize(
    ("path", "status", "where"),
    [
        ("/api/v1/jobs/9223372036854775808", 422, "path.job_id"),
        ("/api/v1/jobs/1/events?after=99999999999999999999", 422, "query.after"),
        ("/api/v1/jobs/1/logs?task_id=-1", 422, "query.task_id"),
        ("/api/v1/jobs?name=%00", 400, None),
        ("/api/v1/jobs?created_after=2026-01-01T00:00:00", 422, None),
    ],
)
async def test_out_of_range_and_nul_queries_are_4xx(
    tmp_path: Path, path: str, status: int, where: str | None
) -> None:
    async with running_hub(tmp_path) as hub:
        response = await hub.api.get(path)

    assert response.status_code == status
    if where is not None:
        assert response.json()["errors"][0]["location"] == where


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"name": "bad\x00name"}, "/tests/0/steps/0/name"),
        ({"params": {"text": "x" * 10, "n": 2**64}}, "/tests/0/steps/0/params/n"),
    ],
)
async def test_descriptors_with_nul_or_huge_integers_are_422_at_their_field(
    tmp_path: Path, change: dict[str, object], location: str
) -> None:
    job = one_test_job()
    job["tests"][0]["steps"][0].update(change)
    async with running_hub(tmp_path) as hub:
        response = await hub.api.post("/api/v1/jobs", content=json.dumps(job))
        jobs = await job_count(hub)

    assert response.status_code == 422
    assert response.json()["errors"][0]["location"] == location
    assert jobs == 0


async def test_a_deeply_nested_descriptor_is_422(tmp_path: Path) -> None:
    deep: object = "x"
    for _ in range(50):
        deep = {"k": deep}
    job = one_test_job(devices={"capabilities": {"deep": deep}})
    async with running_hub(tmp_path) as hub:
        response = await hub.api.post("/api/v1/jobs", content=json.dumps(job))

    assert response.status_code == 422
    assert "nested more than 32 levels" in response.json()["message"]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x00binary", "binary_frame"),
        ("[" * 5000 + "]" * 5000, "malformed_message"),
        (
            '{"type": "LOG", "seq": 1, "task_id": 99999999999999999999, "step_index": 0, '
            '"text": ""}',
            "malformed_message",
        ),
        (
            '{"type": "TASK_FINISHED", "seq": 1, "task_id": 1, "state": "passed", '
            '"at": "2026-01-01T00:00:00"}',
            "malformed_message",
        ),
        ('{"type": "DEVICE_REMOVED", "seq": 1, "name": "a\\u0000b"}', "malformed_message"),
        # Over the agents' 4 MiB (the WebSocket layer itself takes coverage parts to 64 MiB).
        ('{"type": "HEARTBEAT", "pad": "' + "x" * (4 * 1024 * 1024) + '"}', "too_large"),
    ],
)
async def test_bad_frames_get_an_error_and_the_agent_works_on(
    tmp_path: Path, frame: str | bytes, code: str
) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("a1")
        agent.send_raw(frame)
        error = await agent.expect(Error)
        job_id = await hub.start(one_test_job())
        agent.finish(await agent.expect(RunTask))
        status = await hub.wait(job_id)

    assert (error.code, error.fatal) == (code, False)
    assert status.state == "completed"


async def test_a_flood_of_bad_frames_is_answered_within_a_budget_then_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_hub(tmp_path) as hub:
        agent = await hub.agent("flooder")
        for _ in range(5000):
            agent.send_raw("{}")
        await agent.expect(Error)
        closed = await _closed(agent)
        answered = sum(1 for m in agent.received if isinstance(m, Error))

    assert closed == 1008
    assert answered < 100  # not 5,000 errors
    warnings = [r for r in caplog.records if "flooder" in r.getMessage()]
    assert 0 < len(warnings) < 100


async def _closed(agent: object) -> int | None:
    from tests.support.inproc import FakeAgent, eventually

    assert isinstance(agent, FakeAgent)
    socket = agent.socket
    await eventually(lambda: socket.close_code is not None, "the hub to close it")
    return socket.close_code
