"""Parameters and matrices through the job API, and schedules: created with their next fire
times, firing once per fire, missed fires per policy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from testfleet.protocol.wire import utcnow
from testfleet.store import schedules as schedule_store
from tests.support.inproc import RunningHub, running_hub

pytestmark = pytest.mark.anyio


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[RunningHub]:
    async with running_hub(tmp_path / "data") as running:
        yield running


def matrix_job() -> dict[str, Any]:
    return {
        "name": "build",
        "params": {"version": "1.0"},
        "tests": [
            {
                "name": "unit",
                "matrix": {"python": ["3.11", "3.12"], "os": ["linux", "mac"]},
                "steps": [
                    {
                        "name": "say",
                        "plugin": "echo",
                        "params": {"text": "v${{ params.version }} py${{ matrix.python }}"},
                    }
                ],
            }
        ],
    }


async def test_a_matrix_job_runs_one_test_per_combination_with_params(hub: RunningHub) -> None:
    agent = await hub.agent("a1")
    agent.run_tasks()
    response = await hub.api.post("/api/v1/jobs?param=version=2.5", json=matrix_job())
    assert response.status_code == 201, response.text
    status = await hub.wait(response.json()["job_id"])
    names = [test.name for test in status.runs[0].tests]
    assert names[0] == "unit [python=3.11, os=linux]" and len(names) == 4
    assert status.descriptor["tests"][3]["steps"][0]["params"]["text"] == "v2.5 py3.12"


async def test_unknown_params_are_422_with_their_place(hub: RunningHub) -> None:
    unknown = await hub.api.post("/api/v1/jobs?param=colour=red", json=matrix_job())
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["location"] == "query.param.colour"
    bare = await hub.api.post("/api/v1/jobs?param=oops", json=matrix_job())
    assert bare.status_code == 422 and bare.json()["errors"][0]["location"] == "query.param"
    job = matrix_job()
    job["tests"][0]["steps"][0]["params"]["text"] = "${{ params.missing }}"
    unresolved = await hub.api.post("/api/v1/jobs", json=job)
    assert unresolved.json()["errors"][0]["location"] == "/tests/0/steps/0/params/text"


async def test_a_schedule_shows_its_next_fires_and_refuses_bad_input(hub: RunningHub) -> None:
    body = {
        "name": "nightly",
        "cron": "0 2 * * *",
        "timezone": "Europe/Berlin",
        "descriptor": matrix_job(),
        "params": {"version": "3"},
    }
    created = await hub.api.post("/api/v1/schedules", json=body)
    assert created.status_code == 201, created.text
    info = created.json()
    fires = info["next_fires"]
    assert len(fires) == 5 and all(f.endswith(("T01:00:00Z", "T00:00:00Z")) for f in fires)
    assert (await hub.api.post("/api/v1/schedules", json=body)).status_code == 409
    bad_cron = await hub.api.post(
        "/api/v1/schedules", json={**body, "name": "x", "cron": "61 * * *"}
    )
    assert bad_cron.status_code == 422 and bad_cron.json()["errors"][0]["location"] == "/cron"
    bad_zone = await hub.api.post(
        "/api/v1/schedules", json={**body, "name": "y", "timezone": "Mars/Olympus"}
    )
    assert bad_zone.json()["errors"][0]["location"] == "/timezone"
    bad_param = await hub.api.post(
        "/api/v1/schedules", json={**body, "name": "z", "params": {"nope": 1}}
    )
    assert bad_param.json()["errors"][0]["location"] == "/params/nope"
    bad_descriptor = await hub.api.post(
        "/api/v1/schedules", json={**body, "name": "w", "descriptor": {"name": "x"}}
    )
    assert bad_descriptor.json()["errors"][0]["location"] == "/descriptor/tests"
    paused = await hub.api.patch(
        f"/api/v1/schedules/{info['schedule_id']}", json={"enabled": False}
    )
    assert paused.json()["next_fires"] == []
    run = await hub.api.post(f"/api/v1/schedules/{info['schedule_id']}/run")
    assert run.status_code == 201
    job = await hub.status(run.json()["job_id"])
    assert job.requestor == "schedule:nightly" and job.descriptor["params"] == {"version": "3"}
    after = (await hub.api.get(f"/api/v1/schedules/{info['schedule_id']}")).json()
    assert after["last_job_id"] == job.job_id and after["last_fire_at"] is None


async def test_due_fires_start_one_job_and_missed_fires_follow_the_policy(hub: RunningHub) -> None:
    for name, missed in (("once", "once"), ("skip", "skip"), ("due", "once")):
        body = {"name": name, "cron": "* * * * *", "descriptor": matrix_job(), "missed": missed}
        assert (await hub.api.post("/api/v1/schedules", json=body)).status_code == 201
    records = {r.name: r for r in await hub.hub.store.read(schedule_store.list_schedules)}
    now = utcnow()
    long_ago = now - timedelta(hours=3)  # the hub was down: many fires missed
    for name in ("once", "skip"):
        await hub.hub.store.write(
            schedule_store.update_schedule, records[name].id, next_fire_at=long_ago
        )
    await hub.hub.store.write(
        schedule_store.update_schedule, records["due"].id, next_fire_at=now - timedelta(seconds=1)
    )
    fires = {f.schedule_id: f for f in await hub.hub.schedules.tick()}
    assert fires[records["once"].id].job_id is not None and fires[records["once"].id].missed
    assert fires[records["skip"].id].job_id is None and fires[records["skip"].id].missed
    assert fires[records["due"].id].job_id is not None and not fires[records["due"].id].missed
    assert await hub.hub.schedules.tick() == []  # each fire once; the next ones are ahead
    after = {r.name: r for r in await hub.hub.store.read(schedule_store.list_schedules)}
    assert all(r.next_fire_at is not None and r.next_fire_at > now for r in after.values())


SMOKE_YAML = """name: smoke-${{ params.version }}
params: {version: "1.0"}
tests:
  - name: t
    steps:
      - {name: say, plugin: echo, params: {text: hi}}
"""


async def test_a_schedules_descriptor_may_be_yaml_or_json_text(hub: RunningHub) -> None:
    body = {"name": "text", "cron": "*/5 * * * *", "descriptor": SMOKE_YAML}
    created = await hub.api.post("/api/v1/schedules", json={**body, "params": {"version": "2"}})
    assert created.status_code == 201, created.text
    assert created.json()["descriptor"]["name"] == "smoke-2"
    as_json = await hub.api.post(
        "/api/v1/schedules",
        json={**body, "name": "json", "descriptor": '{"name": "j", "tests": []}'},
    )
    assert as_json.status_code == 422  # read as JSON, then checked: a job needs a test
    assert as_json.json()["errors"][0]["location"] == "/descriptor/tests"


@pytest.mark.parametrize(
    ("text", "location", "words"),
    [
        ("name: [unclosed", "/descriptor", "invalid YAML at line 1"),
        ('{"name": ', "/descriptor", "invalid JSON at line 1"),
        ("- just\n- a list\n", "/descriptor", "expected an object"),
        ("   ", "/descriptor", "empty"),
        ("name: x\ntests:\n  - name: t\n    steps: []\n", "/descriptor/tests/0/steps", ""),
    ],
)
async def test_a_bad_descriptor_text_is_422_at_the_descriptor(
    hub: RunningHub, text: str, location: str, words: str
) -> None:
    body = {"name": "bad", "cron": "0 2 * * *", "descriptor": text}
    answer = await hub.api.post("/api/v1/schedules", json=body)
    assert answer.status_code == 422, answer.text
    error = answer.json()["errors"][0]
    assert error["location"] == location
    assert words in error["message"]
