"""The hub on PostgreSQL: the job API, stop, and a killed hub carrying on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.jobs import cmd_job, echo_job, start, tasks_of, wait_state, wait_task_running
from tests.support.postgres import fresh_database
from tests.support.processes import Agent, Hub

pytestmark = pytest.mark.integration


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty PostgreSQL database."""
    with fresh_database() as url:
        yield url


def test_jobs_run_stop_and_survive_a_hub_kill_on_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    hub = Hub(tmp_path, db_url=postgres_url).start()
    agent = Agent(tmp_path, hub.url, "pg-agent", slots=2).start()
    try:
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            agent.wait_online(client)
            done = wait_state(client, start(client, echo_job("pg-echo", tags=["pg"])))
            assert done["state"] == "completed"
            assert client.get(f"/api/v1/jobs/{done['job_id']}/logs").text == "hi\n"
            listed = client.get("/api/v1/jobs", params={"tag": "pg"}).json()["jobs"]
            assert [j["job_id"] for j in listed] == [done["job_id"]]

            stopped = start(client, cmd_job("pg-stop", "import time; time.sleep(60)"))
            wait_task_running(client, stopped)
            assert client.post(f"/api/v1/jobs/{stopped}/stop").status_code == 202
            assert wait_state(client, stopped)["state"] == "cancelled"

            code = "import time\nfor i in range(20):\n    print(i, flush=True); time.sleep(0.1)"
            survivor = start(client, cmd_job("pg-survivor", code))
            wait_task_running(client, survivor)
            hub.kill()
            time.sleep(0.5)
            hub.start()
            status = wait_state(client, survivor, timeout=40)
            assert status["state"] == "completed", status
            (task,) = tasks_of(status)
            assert task["state"] == "passed"
            logs = client.get(f"/api/v1/jobs/{survivor}/logs").text
            assert logs == "".join(f"{i}\n" for i in range(20))
    finally:
        agent.stop()
        hub.stop()
