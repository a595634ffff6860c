"""The hub on PostgreSQL: the job API, stop, and a killed hub carrying on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.jobs import cmd_job, echo_job, start, tasks_of, wait_state, wait_task_running
from tests.support.postgres import fresh_database
from tests.support.processes import Agent, Hub, wait_until

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


def test_a_job_carries_on_when_the_server_drops_every_connection(
    tmp_path: Path, postgres_url: str
) -> None:
    """A PostgreSQL restart or failover drops the hub's connections mid-job (pooled ones,
    the writers' and the LISTEN one): the job still completes and loses no log line."""
    hub = Hub(tmp_path, db_url=postgres_url).start()
    agent = Agent(tmp_path, hub.url, "pg-agent", slots=1).start()
    try:
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            agent.wait_online(client)
            code = "import time\nfor i in range(30):\n    print(i, flush=True); time.sleep(0.1)"
            job_id = start(client, cmd_job("pg-dropped", code))
            wait_task_running(client, job_id)
            dropped = terminate_backends(postgres_url)
            assert dropped >= 2
            status = wait_state(client, job_id, timeout=40)
            assert status["state"] == "completed", status
            assert client.get(f"/api/v1/jobs/{job_id}/logs").text == "".join(
                f"{i}\n" for i in range(30)
            )
            assert client.get("/readyz").status_code == 200
    finally:
        agent.stop()
        hub.stop()


def terminate_backends(url: str) -> int:
    """Drop every connection to `url`'s database; returns how many there were."""
    database = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/test"

    async def run() -> int:
        connection = await asyncpg.connect(admin, timeout=10)
        try:
            return int(
                await connection.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = $1",
                    database,
                )
            )
        finally:
            await connection.close()

    return asyncio.run(run())


def test_a_store_outage_fails_no_healthy_work(tmp_path: Path, postgres_url: str) -> None:
    """The database refuses every connection for longer than the agent timeout while a step
    runs and ends: the hub is not ready meanwhile, no agent that kept its connection is
    declared lost, and the task keeps its true result once the store is back."""
    hub = Hub(tmp_path, db_url=postgres_url, extra=["--agent-timeout", "2"]).start()
    agent = Agent(tmp_path, hub.url, "steady", slots=1).start()
    try:
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            agent.wait_online(client)
            code = "import time\nfor i in range(20):\n    print(i, flush=True); time.sleep(0.25)"
            job_id = start(client, cmd_job("outage", code))
            wait_task_running(client, job_id)
            with database_refused(postgres_url):
                wait_until(lambda: client.get("/readyz").status_code == 503, 10, what="readyz 503")
                time.sleep(6)  # the outage lasts: past the step's end and 2 agent timeouts
            status = wait_state(client, job_id, timeout=40)
            assert status["state"] == "completed", status
            assert client.get(f"/api/v1/jobs/{job_id}/logs").text == "".join(
                f"{i}\n" for i in range(20)
            )
            agents = client.get("/api/v1/agents").json()["agents"]
            assert [a["state"] for a in agents if a["name"] == "steady"] == ["online"]
            lost = client.get(f"/api/v1/jobs/{job_id}/events", params={"kind": "agent_lost"})
            assert lost.json()["events"] == []
            wait_until(lambda: client.get("/readyz").status_code == 200, 10, what="ready")
    finally:
        agent.stop()
        hub.stop()


@contextlib.contextmanager
def database_refused(url: str) -> Iterator[None]:
    """The database refuses new connections and drops the open ones, until the block ends."""
    database = url.rsplit("/", 1)[1]

    async def allow(flag: bool) -> None:
        connection = await asyncpg.connect(url.rsplit("/", 1)[0] + "/test", timeout=10)
        try:
            await connection.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {flag}')
        finally:
            await connection.close()

    asyncio.run(allow(False))
    try:
        terminate_backends(url)
        yield
    finally:
        asyncio.run(allow(True))
