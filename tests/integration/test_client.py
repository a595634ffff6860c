"""The Python client (sync and async) against a real hub with one real agent."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from testfleet.client import ApiError, AsyncClient, Client, HubUnreachable
from testfleet.protocol.api import JobStatus
from testfleet.protocol.states import JobState, RunState
from tests.conftest import LiveHub
from tests.support.processes import free_port

pytestmark = pytest.mark.integration

WAIT = 60.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def echo_cmd_job(
    name: str = "smoke", tags: list[str] | None = None, code: int = 0
) -> dict[str, Any]:
    script = f"import sys; print('from-cmd'); sys.exit({code})"
    return {
        "name": name,
        "tags": tags or [],
        "tests": [
            {
                "name": "hello",
                "steps": [
                    {"name": "say", "plugin": "echo", "params": {"text": "hi"}},
                    {
                        "name": "run",
                        "plugin": "cmd",
                        "timeout": "30s",
                        "params": {"executable": sys.executable, "args": ["-c", script]},
                    },
                ],
            }
        ],
    }


def sleep_job(name: str, seconds: float = 60) -> dict[str, Any]:
    return {
        "name": name,
        "tests": [
            {
                "name": "nap",
                "steps": [{"name": "nap", "plugin": "sleep", "params": {"duration": seconds}}],
            }
        ],
    }


@pytest.fixture
def hub(live_hub: LiveHub) -> Iterator[Client]:
    with Client(live_hub.url, timeout=30) as api:
        yield api


def only_task(status: JobStatus) -> Any:
    (run,) = status.runs
    (test,) = run.tests
    (task,) = test.tasks
    return task


def test_version(hub: Client, live_hub: LiveHub) -> None:
    info = hub.version()
    assert info.version == 1
    assert info.server_id


def test_a_job_runs_and_is_followed_to_its_end(hub: Client, live_hub: LiveHub) -> None:
    job_id = hub.start(echo_cmd_job(tags=["client-smoke"]))
    with hub.follow(job_id) as stream:
        events = list(stream)
        assert stream.final_state is JobState.COMPLETED
    kinds = [event.kind for event in events]
    for kind in (
        "job_started",
        "task_started",
        "step_started",
        "log",
        "step_finished",
        "task_finished",
        "job_finished",
    ):
        assert kind in kinds, kind
    assert kinds.index("job_started") < kinds.index("job_finished")
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert all(event.job_id == job_id for event in events)

    status = hub.status(job_id)
    assert status.state is JobState.COMPLETED
    assert status.tags == ["client-smoke"]
    task = only_task(status)
    assert task.agent == live_hub.agent_name
    assert (task.state, task.attempt) == (RunState.PASSED, 1)
    assert [(s.name, s.plugin, s.state, s.exit_code) for s in task.steps] == [
        ("say", "echo", RunState.PASSED, 0),
        ("run", "cmd", RunState.PASSED, 0),
    ]

    assert hub.logs(job_id) == "hi\nfrom-cmd\n"
    assert hub.logs(job_id, task_id=task.task_id, step=1) == "from-cmd\n"
    assert hub.logs(job_id, step=0) == "hi\n"

    paged: list[int] = []
    after = 0
    while True:
        page = hub.events(job_id, after=after, limit=3)
        if not page.events:
            break
        assert len(page.events) <= 3
        paged += [event.id for event in page.events]
        after = page.next_after
    assert paged == [event.id for event in events]
    assert [e.id for e in hub.follow(job_id, after=events[-2].id)] == [events[-1].id]


def test_a_failing_command_fails_the_job(hub: Client) -> None:
    job_id = hub.start(echo_cmd_job("fails", code=3))
    status = hub.wait(job_id, timeout=WAIT)
    assert status.state is JobState.FAILED
    step = only_task(status).steps[1]
    assert (step.state, step.exit_code) == (RunState.FAILED, 3)
    assert step.error


def test_yaml_and_contest_descriptors(hub: Client, live_hub: LiveHub) -> None:
    yaml_text = (
        "name: from-yaml\ntests:\n  - name: t\n    steps:\n"
        "      - {name: say, plugin: echo, params: {text: yaml}}\n"
    )
    yaml_id = hub.start(yaml_text)
    contest = {
        "JobName": "contest",
        "TestDescriptors": [
            {
                "TargetManagerName": "TargetList",
                "TestFetcherName": "literal",
                "TestFetcherFetchParameters": {
                    "TestName": "lit",
                    "Steps": [
                        {"name": "echo", "label": "say", "parameters": {"text": ["contest"]}}
                    ],
                },
            }
        ],
    }
    contest_id = hub.start(contest)
    assert hub.wait(yaml_id, timeout=WAIT).state is JobState.COMPLETED
    assert hub.logs(yaml_id) == "yaml\n"
    assert hub.wait(contest_id, timeout=WAIT).state is JobState.COMPLETED
    assert hub.logs(contest_id) == "contest\n"


def test_stop_a_running_job(hub: Client) -> None:
    job_id = hub.start(sleep_job(unique("stop-me")))
    with hub.follow(job_id) as stream:
        for event in stream:
            if event.kind == "step_started":
                break
    answer = hub.stop(job_id)
    assert answer.job_id == job_id
    assert answer.state in (JobState.CANCELLING, JobState.CANCELLED)
    status = hub.wait(job_id, timeout=WAIT)
    assert status.state is JobState.CANCELLED
    assert only_task(status).steps[0].state is RunState.CANCELLED
    with pytest.raises(ApiError) as caught:
        hub.stop(job_id)
    assert caught.value.status == 409


def test_retry_starts_a_new_job(hub: Client) -> None:
    first = hub.start(echo_cmd_job(unique("retry")))
    hub.wait(first, timeout=WAIT)
    second = hub.retry(first)
    assert second != first
    status = hub.wait(second, timeout=WAIT)
    assert status.retried_from == first
    assert status.state is JobState.COMPLETED


def test_list_filters_and_pages(hub: Client, live_hub: LiveHub) -> None:
    tag = unique("tag")
    name = unique("listed")
    before = datetime.now(UTC) - timedelta(seconds=5)
    ids = [hub.start(echo_cmd_job(name, tags=[tag, "common"])) for _ in range(3)]
    with Client(live_hub.url, requestor="alice-list") as alice:
        alice_id = alice.start(echo_cmd_job(unique("other"), tags=[tag]))
    for job_id in [*ids, alice_id]:
        hub.wait(job_id, timeout=WAIT)
    newest_first = sorted(ids, reverse=True)

    first = hub.list(tags=[tag, "common"], limit=2)
    assert [job.job_id for job in first.jobs] == newest_first[:2]
    assert first.next_cursor is not None
    second = hub.list(tags=[tag, "common"], limit=2, cursor=first.next_cursor)
    assert [job.job_id for job in second.jobs] == newest_first[2:]
    assert second.next_cursor is None
    every = [job.job_id for job in hub.iter_jobs(tags=[tag], page_size=1)]
    assert every == sorted([*ids, alice_id], reverse=True)

    assert {j.job_id for j in hub.list(tags=[tag], states=["completed"]).jobs} == {*ids, alice_id}
    assert hub.list(tags=[tag], states=[JobState.FAILED, JobState.RUNNING]).jobs == []
    assert [j.job_id for j in hub.list(name=name).jobs] == newest_first
    assert [j.job_id for j in hub.list(tags=[tag], requestor="alice-list").jobs] == [alice_id]
    assert len(hub.list(tags=[tag], created_after=before).jobs) == 4
    assert hub.list(tags=[tag], created_before=before).jobs == []
    assert hub.list(tags=[tag], created_after=datetime.now(UTC) + timedelta(hours=1)).jobs == []


def test_errors_carry_the_hub_answer(hub: Client) -> None:
    with pytest.raises(ApiError) as unknown:
        hub.status(10**9)
    assert unknown.value.status == 404
    assert str(10**9) in unknown.value.message
    assert unknown.value.server_id

    bad = {
        "name": "bad",
        "tests": [
            {
                "name": "t",
                "steps": [
                    {"name": "s", "plugin": "nope"},
                    {"name": "c", "plugin": "cmd", "params": {}},
                ],
            }
        ],
    }
    with pytest.raises(ApiError) as invalid:
        hub.start(bad)
    assert invalid.value.status == 422
    locations = [error.location for error in invalid.value.errors]
    assert "/tests/0/steps/0/plugin" in locations
    assert "/tests/0/steps/1/params/executable" in locations
    assert "at /tests/0/steps/0/plugin:" in str(invalid.value)

    with pytest.raises(ApiError) as missing:
        hub.start({"name": "no-tests"})
    assert missing.value.status == 422
    assert missing.value.errors[0].location == "/tests"

    with pytest.raises(ApiError) as malformed:
        hub.start("name: [unclosed\n")
    assert malformed.value.status == 400


def test_inventory(hub: Client, live_hub: LiveHub) -> None:
    agents = {agent.name: agent for agent in hub.agents().agents}
    assert agents[live_hub.agent_name].state == "online"
    mine = [d for d in hub.devices().devices if d.agent == live_hub.agent_name]
    assert len(mine) == 2 and all(device.kind == "host" for device in mine)


def test_an_unreachable_hub() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, timeout=5) as nowhere, pytest.raises(HubUnreachable) as caught:
        nowhere.version()
    assert url in str(caught.value)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_client(live_hub: LiveHub, anyio_backend: str) -> None:
    async with AsyncClient(live_hub.url) as hub:
        job_id = await hub.start(echo_cmd_job(unique("async")))
        stream = hub.follow(job_id)
        kinds = [event.kind async for event in stream]
        assert stream.final_state is JobState.COMPLETED
        assert "log" in kinds and kinds[-1] == "job_finished"
        assert (await hub.status(job_id)).state is JobState.COMPLETED
        assert await hub.logs(job_id) == "hi\nfrom-cmd\n"
        assert (await hub.wait(job_id, timeout=5)).state is JobState.COMPLETED
        assert [j.job_id async for j in hub.iter_jobs(name=(await hub.status(job_id)).name)] == [
            job_id
        ]


def test_tokens_and_roles(auth_hub: LiveHub) -> None:
    with Client(auth_hub.url) as anonymous, pytest.raises(ApiError) as caught:
        anonymous.agents()
    assert caught.value.status == 401
    assert auth_hub.admin_token
    with Client(auth_hub.url, token=auth_hub.admin_token) as admin:
        created = admin.create_token(unique("viewer"), "viewer")
        assert created.token and created.role == "viewer"
        assert created.token_id in [t.token_id for t in admin.list_tokens().tokens]
        with Client(auth_hub.url, token=created.token) as viewer:
            viewer.list(limit=1)
            with pytest.raises(ApiError) as forbidden:
                viewer.start(echo_cmd_job())
            assert forbidden.value.status == 403
            admin.revoke_token(created.token_id)
            with pytest.raises(ApiError) as revoked:
                viewer.list(limit=1)
            assert revoked.value.status == 401
        job_id = admin.start(echo_cmd_job(unique("authed")))
        assert admin.wait(job_id, timeout=WAIT).requestor
