"""Test reports through an in-process hub: JUnit artifacts become test cases in the job's
status (failed first), a case's history spans jobs, and flaky cases are flagged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from testfleet.agent.artifacts import ArtifactUploader, FoundFile
from testfleet.protocol.wire import RunTask
from tests.support.inproc import FakeAgent, RunningHub, one_test_job, running_hub

pytestmark = pytest.mark.anyio


def junit(*cases: tuple[str, str]) -> bytes:
    body = []
    for name, outcome in cases:
        inner = {
            "passed": "",
            "failed": '<failure message="boom">trace</failure>',
            "error": '<error message="crash"/>',
            "skipped": "<skipped/>",
        }[outcome]
        body.append(f'<testcase classname="suite.mod" name="{name}" time="0.5">{inner}</testcase>')
    return f'<testsuites><testsuite name="s">{"".join(body)}</testsuite></testsuites>'.encode()


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[RunningHub]:
    async with running_hub(tmp_path / "data") as running:
        yield running


async def run_with_report(
    hub: RunningHub, agent: FakeAgent, tmp_path: Path, name: str, files: dict[str, bytes]
) -> int:
    job_id = await hub.start(one_test_job(name))
    task = await agent.expect(RunTask)
    transport = hub.api._transport
    assert isinstance(transport, httpx.AsyncBaseTransport)
    uploader = ArtifactUploader("http://hub", None, transport=transport)
    for path, data in files.items():
        location = tmp_path / f"{job_id}-{path.replace('/', '_')}"
        location.write_bytes(data)
        await uploader.upload(task.task_id, 0, FoundFile(path, location))
    agent.finish(task)
    await hub.wait(job_id)
    return job_id


async def test_a_job_s_status_counts_its_cases_and_lists_the_failed_first(
    hub: RunningHub, tmp_path: Path
) -> None:
    agent = await hub.agent("a1")
    report = junit(("ok1", "passed"), ("bad", "failed"), ("skip", "skipped"), ("err", "error"))
    job_id = await run_with_report(
        hub, agent, tmp_path, "suite", {"reports/junit.xml": report, "notes.xml": b"<x/>"}
    )
    status = await hub.status(job_id)
    assert status.state == "completed"
    assert status.test_report is not None
    counts = status.test_report.counts
    assert (counts.total, counts.passed, counts.failed, counts.error, counts.skipped) == (
        4,
        1,
        1,
        1,
        1,
    )
    assert [c.name for c in status.test_report.failed_cases] == ["bad", "err"]
    assert status.test_report.failed_cases[0].message == "boom"

    cases = (await hub.api.get(f"/api/v1/jobs/{job_id}/testcases?limit=2")).json()
    assert [c["name"] for c in cases["cases"]] == ["bad", "err"]
    rest = (
        await hub.api.get(f"/api/v1/jobs/{job_id}/testcases?limit=2&cursor={cases['next_cursor']}")
    ).json()
    assert [c["name"] for c in rest["cases"]] == ["skip", "ok1"] and rest["next_cursor"] is None
    only = (await hub.api.get(f"/api/v1/jobs/{job_id}/testcases?outcome=skipped")).json()
    assert [c["name"] for c in only["cases"]] == ["skip"]
    artifacts = (await hub.api.get(f"/api/v1/jobs/{job_id}/artifacts")).json()["artifacts"]
    counted = {a["path"]: a["report_cases"] for a in artifacts}
    assert counted == {"notes.xml": None, "reports/junit.xml": 4}


async def test_a_case_that_passes_and_fails_on_the_same_job_name_is_flaky(
    hub: RunningHub, tmp_path: Path
) -> None:
    agent = await hub.agent("a1")
    await run_with_report(hub, agent, tmp_path, "nightly", {"r.xml": junit(("login", "passed"))})
    await run_with_report(hub, agent, tmp_path, "nightly", {"r.xml": junit(("login", "failed"))})
    await run_with_report(hub, agent, tmp_path, "other", {"r.xml": junit(("login", "passed"))})
    history = (await hub.api.get("/api/v1/testcases", params={"name": "login"})).json()
    by_job = {h["job_name"]: h for h in history["histories"]}
    assert by_job["nightly"]["flaky"] is True
    assert (by_job["nightly"]["passed"], by_job["nightly"]["failed"]) == (1, 1)
    assert [r["outcome"] for r in by_job["nightly"]["runs"]] == ["failed", "passed"]
    assert by_job["other"]["flaky"] is False
    assert history["histories"][0]["job_name"] == "nightly"  # flaky ones first
    qualified = (await hub.api.get("/api/v1/testcases", params={"name": "suite.mod::login"})).json()
    assert len(qualified["histories"]) == 2
    unknown = (await hub.api.get("/api/v1/testcases", params={"name": "nope"})).json()
    assert unknown["histories"] == []
    missing = await hub.api.get("/api/v1/testcases")
    assert missing.status_code == 422 and missing.json()["errors"][0]["location"] == "query.name"


async def test_a_malformed_or_hostile_report_is_reported_and_fails_nothing(
    hub: RunningHub, tmp_path: Path
) -> None:
    agent = await hub.agent("a1")
    bomb = b'<!DOCTYPE t [<!ENTITY a "aaaa">]><testsuite name="&a;"/>'
    job_id = await run_with_report(
        hub,
        agent,
        tmp_path,
        "broken",
        {"bad.xml": b"<testsuite><testcase name='x'>", "bomb.xml": bomb},
    )
    status = await hub.status(job_id)
    assert status.state == "completed"
    assert status.test_report is not None
    assert status.test_report.counts.total == 0
    errors = status.test_report.report_errors
    assert errors[0].startswith("bad.xml: not well-formed XML at line 1")
    assert errors[1].startswith("bomb.xml: refused: the document declares XML entities")


async def test_ten_thousand_cases_are_stored(hub: RunningHub, tmp_path: Path) -> None:
    agent = await hub.agent("a1")
    many = junit(*[(f"case{i}", "failed" if i % 1000 == 0 else "passed") for i in range(10_000)])
    job_id = await run_with_report(hub, agent, tmp_path, "many", {"big.xml": many})
    report = (await hub.status(job_id)).test_report
    assert report is not None
    assert (report.counts.total, report.counts.failed) == (10_000, 10)
