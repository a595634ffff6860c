"""Artifacts through an in-process hub: announced, streamed, resumed, checked, listed, served.

The uploads are the agent's real uploader (`agent/artifacts.py`) talking to the hub's API over
`httpx.ASGITransport`; tasks come from real jobs handed to a fake agent.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from testfleet.agent.artifacts import ArtifactUploader, FoundFile, Refused, collect
from testfleet.protocol.wire import RunTask
from tests.support.inproc import RunningHub, one_test_job, running_hub

pytestmark = pytest.mark.anyio


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[RunningHub]:
    async with running_hub(
        tmp_path / "data", max_artifact_size=1_000_000, max_job_artifacts=1_500_000
    ) as running:
        yield running


def uploader(hub: RunningHub) -> ArtifactUploader:
    transport = hub.api._transport
    assert isinstance(transport, httpx.AsyncBaseTransport)
    return ArtifactUploader("http://hub", None, transport=transport, retry_delay=0.01)


async def running_task(hub: RunningHub, **step: Any) -> RunTask:
    agent = await hub.agent("a1")
    job = one_test_job("arts")
    job["tests"][0]["steps"][0].update(step)
    await hub.start(job)
    return await agent.expect(RunTask)


def write(path: Path, data: bytes) -> FoundFile:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return FoundFile(path.name, path)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_a_step_s_globs_reach_the_agent(hub: RunningHub) -> None:
    task = await running_task(hub, artifacts=["reports/*.xml", "screenshots/**"])
    assert task.steps[0].artifacts == ["reports/*.xml", "screenshots/**"]


async def test_an_uploaded_file_is_listed_and_downloaded_whole(
    hub: RunningHub, tmp_path: Path
) -> None:
    task = await running_task(hub)
    data = bytes(range(256)) * 1000
    file = write(tmp_path / "out.bin", data)
    state = await uploader(hub).upload(task.task_id, 0, file)
    assert state.complete and state.size == len(data)

    listing = (await hub.api.get(f"/api/v1/jobs/{task.job_id}/artifacts")).json()
    [artifact] = listing["artifacts"]
    assert (artifact["path"], artifact["size"], artifact["sha256"]) == (
        "out.bin",
        len(data),
        sha(data),
    )
    assert artifact["device_name"] == "slot-0"
    body = await hub.api.get(artifact["download"])
    assert body.status_code == 200 and body.content == data
    assert body.headers["x-checksum-sha256"] == sha(data)
    part = await hub.api.get(artifact["download"], headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    tail = await hub.api.get(artifact["download"], headers={"Range": "bytes=-5"})
    assert tail.content == data[-5:]
    bad = await hub.api.get(artifact["download"], headers={"Range": "bytes=9999999-"})
    assert bad.status_code == 416


async def test_the_zip_holds_every_file_under_its_task_and_device(
    hub: RunningHub, tmp_path: Path
) -> None:
    task = await running_task(hub)
    up = uploader(hub)
    await up.upload(task.task_id, 0, write(tmp_path / "a.txt", b"alpha\n" * 1000))
    await up.upload(
        task.task_id, 0, FoundFile("deep/b.png", write(tmp_path / "b", b"\x89P").location)
    )
    response = await hub.api.get(f"/api/v1/jobs/{task.job_id}/artifacts.zip")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    prefix = f"{task.task_id}-slot-0/"
    assert sorted(archive.namelist()) == [prefix + "a.txt", prefix + "deep/b.png"]
    assert archive.read(prefix + "a.txt") == b"alpha\n" * 1000
    assert archive.testzip() is None


async def test_an_upload_cut_in_the_middle_resumes_from_what_arrived(
    hub: RunningHub, tmp_path: Path
) -> None:
    task = await running_task(hub)
    data = b"0123456789" * 50_000
    file = write(tmp_path / "big.bin", data)
    announce = {"step_index": 0, "path": "big.bin", "size": len(data), "sha256": sha(data)}
    created = await hub.api.post(f"/api/v1/tasks/{task.task_id}/artifacts", json=announce)
    assert created.status_code == 201, created.text
    upload_id = created.json()["upload_id"]
    half = len(data) // 2
    first = await hub.api.put(
        f"/api/v1/uploads/{upload_id}", content=data[:half], headers={"Upload-Offset": "0"}
    )
    assert first.json() == {
        "upload_id": upload_id,
        "offset": half,
        "size": len(data),
        "complete": False,
    }
    listing = (await hub.api.get(f"/api/v1/jobs/{task.job_id}/artifacts")).json()
    assert listing["artifacts"] == []  # a half file is never listed

    wrong = await hub.api.put(
        f"/api/v1/uploads/{upload_id}", content=b"x", headers={"Upload-Offset": "3"}
    )
    assert wrong.status_code == 409 and wrong.json()["code"] == "offset_mismatch"

    state = await uploader(hub).upload(task.task_id, 0, file)  # announces, finds `half`, resumes
    assert state.complete
    [artifact] = (await hub.api.get(f"/api/v1/jobs/{task.job_id}/artifacts")).json()["artifacts"]
    assert (await hub.api.get(artifact["download"])).content == data


async def test_bytes_that_do_not_match_the_checksum_are_refused_and_start_over(
    hub: RunningHub,
) -> None:
    task = await running_task(hub)
    announce = {"step_index": 0, "path": "f", "size": 4, "sha256": sha(b"good")}
    upload_id = (
        await hub.api.post(f"/api/v1/tasks/{task.task_id}/artifacts", json=announce)
    ).json()["upload_id"]
    bad = await hub.api.put(
        f"/api/v1/uploads/{upload_id}", content=b"evil", headers={"Upload-Offset": "0"}
    )
    assert bad.status_code == 422 and bad.json()["code"] == "checksum_mismatch"
    assert (await hub.api.get(f"/api/v1/uploads/{upload_id}")).json()["offset"] == 0
    assert (await hub.api.get(f"/api/v1/jobs/{task.job_id}/artifacts")).json()["artifacts"] == []
    good = await hub.api.put(
        f"/api/v1/uploads/{upload_id}", content=b"good", headers={"Upload-Offset": "0"}
    )
    assert good.json()["complete"] is True


async def test_more_bytes_than_announced_are_refused(hub: RunningHub) -> None:
    task = await running_task(hub)
    announce = {"step_index": 0, "path": "f", "size": 2, "sha256": sha(b"ab")}
    upload_id = (
        await hub.api.post(f"/api/v1/tasks/{task.task_id}/artifacts", json=announce)
    ).json()["upload_id"]
    response = await hub.api.put(
        f"/api/v1/uploads/{upload_id}", content=b"abc", headers={"Upload-Offset": "0"}
    )
    assert response.status_code == 413 and response.json()["code"] == "upload_too_long"


async def test_limits_per_file_and_per_job_refuse_clearly(hub: RunningHub, tmp_path: Path) -> None:
    task = await running_task(hub)
    up = uploader(hub)
    with pytest.raises(Refused, match="artifact_too_large"):
        await up.upload(task.task_id, 0, write(tmp_path / "huge", b"x" * 1_000_001))
    await up.upload(task.task_id, 0, write(tmp_path / "one", b"x" * 900_000))
    with pytest.raises(Refused, match=r"job_artifacts_too_large.*would take the job"):
        await up.upload(task.task_id, 0, write(tmp_path / "two", b"y" * 900_000))


async def test_bad_announcements_get_a_clear_error(hub: RunningHub) -> None:
    task = await running_task(hub)
    url = f"/api/v1/tasks/{task.task_id}/artifacts"
    escape = await hub.api.post(
        url, json={"step_index": 0, "path": "../etc/passwd", "size": 1, "sha256": "0" * 64}
    )
    assert escape.status_code == 422 and escape.json()["errors"][0]["location"] == "/path"
    checksum = await hub.api.post(
        url, json={"step_index": 0, "path": "a", "size": 1, "sha256": "x"}
    )
    assert checksum.status_code == 422 and checksum.json()["errors"][0]["location"] == "/sha256"
    unknown = await hub.api.post(
        "/api/v1/tasks/999/artifacts",
        json={"step_index": 0, "path": "a", "size": 1, "sha256": "0" * 64},
    )
    assert unknown.status_code == 404
    missing = await hub.api.put("/api/v1/uploads/1", content=b"x")
    assert missing.status_code == 422  # no Upload-Offset header
    assert (await hub.api.get("/api/v1/jobs/999/artifacts")).status_code == 404


async def test_a_glob_that_escapes_the_working_directory_is_refused_at_submit(
    hub: RunningHub,
) -> None:
    job = one_test_job("escape")
    job["tests"][0]["steps"][0]["artifacts"] = ["ok/*.xml", "../secrets/*", "/etc/passwd"]
    response = await hub.api.post("/api/v1/jobs", json=job)
    assert response.status_code == 422
    locations = [error["location"] for error in response.json()["errors"]]
    assert locations == ["/tests/0/steps/0/artifacts/1", "/tests/0/steps/0/artifacts/2"]
    assert "escapes the task's working directory" in response.json()["message"]


def test_collect_finds_files_and_skips_what_leads_outside(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "reports").mkdir(parents=True)
    (work / "reports" / "a.xml").write_text("<a/>")
    (work / "reports" / "b.txt").write_text("b")
    (work / "shots" / "deep").mkdir(parents=True)
    (work / "shots" / "deep" / "1.png").write_bytes(b"p")
    (tmp_path / "secret").write_text("s")
    (work / "shots" / "link").symlink_to(tmp_path / "secret")
    files, problems = collect(work, ["reports/*.xml", "shots/**", "none/*", "../x"])
    assert sorted(f.path for f in files) == ["reports/a.xml", "shots/deep/1.png"]
    assert any("link skipped: it leads outside" in p for p in problems)
    assert any("'none/*' matched no file" in p for p in problems)
    assert any("escapes" in p for p in problems)
