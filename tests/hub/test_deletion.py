"""Deleting jobs and retention through an in-process hub: a deleted job is gone from the
API at once; its events, test cases and files follow in the background."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Connection, func, select

from testfleet.agent.artifacts import ArtifactUploader, FoundFile
from testfleet.protocol.wire import RunTask, utcnow
from testfleet.store import jobs as job_store
from testfleet.store.tables import events, test_cases
from tests.support.inproc import RunningHub, eventually, one_test_job, running_hub

pytestmark = pytest.mark.anyio


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[RunningHub]:
    async with running_hub(
        tmp_path / "data", retain_days=1.0, retain_tags={"keep": 30.0}
    ) as running:
        yield running


def rows_of(job_id: int):  # type: ignore[no-untyped-def]
    def count(conn: Connection) -> tuple[int, int]:
        return (
            conn.execute(select(func.count()).where(events.c.job_id == job_id)).scalar_one(),
            conn.execute(select(func.count()).where(test_cases.c.job_id == job_id)).scalar_one(),
        )

    return count


async def test_a_deleted_job_goes_with_its_events_cases_and_files(
    hub: RunningHub, tmp_path: Path
) -> None:
    agent = await hub.agent("a1")
    job_id = await hub.start(one_test_job("doomed"))
    task = await agent.expect(RunTask)
    busy = await hub.api.delete(f"/api/v1/jobs/{job_id}")
    assert busy.status_code == 409 and busy.json()["code"] == "job_not_finished"
    transport = hub.api._transport
    assert isinstance(transport, httpx.AsyncBaseTransport)
    report = tmp_path / "r.xml"
    report.write_bytes(b'<testsuite name="s"><testcase name="a"/></testsuite>')
    await ArtifactUploader("http://hub", None, transport=transport).upload(
        task.task_id, 0, FoundFile("r.xml", report)
    )
    agent.finish(task)
    await hub.wait(job_id)
    files = hub.hub.config.artifact_root / "files" / str(job_id)
    assert any(files.iterdir())
    assert (await hub.hub.store.read(rows_of(job_id)))[1] == 1

    deleted = await hub.api.delete(f"/api/v1/jobs/{job_id}")
    assert deleted.status_code == 202, deleted.text
    assert (await hub.api.get(f"/api/v1/jobs/{job_id}")).status_code == 404
    assert (await hub.api.get(f"/api/v1/jobs/{job_id}/artifacts")).status_code == 404
    assert job_id not in [j["job_id"] for j in (await hub.api.get("/api/v1/jobs")).json()["jobs"]]

    async def gone() -> bool:
        return await hub.hub.store.read(job_store.get_job, job_id) is None

    await eventually(gone, "the job row gone")
    assert await hub.hub.store.read(rows_of(job_id)) == (0, 0)
    assert not files.exists()
    assert (await hub.api.delete(f"/api/v1/jobs/{job_id}")).status_code == 404


async def test_retention_deletes_old_jobs_and_keeps_tagged_ones_longer(hub: RunningHub) -> None:
    agent = await hub.agent("a1")
    agent.run_tasks()
    old = await hub.start(one_test_job("old"))
    kept = await hub.start({**one_test_job("kept"), "tags": ["keep"]})
    fresh = await hub.start(one_test_job("fresh"))
    for job_id in (old, kept, fresh):
        await hub.wait(job_id)
    ten_days_ago = utcnow() - timedelta(days=10)
    for job_id in (old, kept):
        await hub.hub.store.write(job_store.update_job, job_id, ended_at=ten_days_ago)
    assert await hub.hub.maintenance.apply_retention() == 1
    await hub.hub.maintenance.remove_deleted()
    assert await hub.hub.store.read(job_store.get_job, old) is None
    for job_id in (kept, fresh):
        assert (await hub.status(job_id)).job_id == job_id
