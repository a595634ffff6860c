"""The results tables on SQLite and PostgreSQL: artifact uploads with the job limit, test
cases counted and listed failed first, a case's history."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection

from testfleet.store import Store
from testfleet.store import artifacts as artifact_store
from testfleet.store import testcases as case_store
from testfleet.store.tasks import NewTask, create_tasks
from tests.store.helpers import NOW, add_agent, add_job

pytestmark = pytest.mark.anyio


def job_with_task(conn: Connection, name: str = "j") -> tuple[int, int]:
    agent_id = add_agent(conn, name=f"agent-{name}", slots=1)
    job_id = add_job(conn, name=name)
    [task] = create_tasks(
        conn, job_id, 1, 0, 1, [NewTask(f"{agent_id}/slot-0", "slot-0", agent_id, [("s", "echo")])]
    )
    return job_id, task.id


def announce(conn: Connection, task_id: int, path: str, size: int, sha: str = "a" * 64):
    return artifact_store.announce_upload(
        conn,
        task_id=task_id,
        step_index=0,
        path=path,
        size=size,
        sha256=sha,
        job_limit=1000,
        now=NOW,
    )


async def test_uploads_are_announced_once_and_limited_per_job(store: Store) -> None:
    job_id, task_id = await store.write(job_with_task)
    first = await store.write(announce, task_id, "a.bin", 600)
    again = await store.write(announce, task_id, "a.bin", 600)
    assert first.artifact is not None and again.artifact is not None
    assert again.artifact.id == first.artifact.id  # a resumed upload finds its row
    refused = await store.write(announce, task_id, "b.bin", 500)
    assert refused.refusal == artifact_store.Refusal.JOB_LIMIT and refused.job_total == 600
    changed = await store.write(announce, task_id, "a.bin", 700, "b" * 64)
    assert changed.replaced and changed.artifact is not None
    assert (changed.artifact.size, changed.artifact.state) == (700, "receiving")
    assert (
        await store.write(announce, 999_999, "x", 1)
    ).refusal == artifact_store.Refusal.UNKNOWN_TASK
    assert await store.read(artifact_store.list_artifacts, job_id) == []
    assert await store.write(artifact_store.complete_artifact, changed.artifact.id, NOW)
    [listed] = await store.read(artifact_store.list_artifacts, job_id)
    assert (listed.path, listed.size, listed.device_name) == ("a.bin", 700, "slot-0")


async def test_cases_are_counted_listed_failed_first_and_followed(store: Store) -> None:
    job_id, task_id = await store.write(job_with_task)
    artifact = (await store.write(announce, task_id, "r.xml", 10)).artifact
    assert artifact is not None
    outcomes = ["passed", "failed", "skipped", "error", "passed"]
    cases = [
        {
            "suite": "s",
            "classname": "c",
            "name": f"t{i}",
            "outcome": outcome,
            "duration": 0.1,
            "message": None,
            "detail": None,
        }
        for i, outcome in enumerate(outcomes)
    ]
    stored = await store.write(
        case_store.insert_cases,
        job_id=job_id,
        job_name="j",
        artifact_id=artifact.id,
        task_id=task_id,
        cases=cases,
        now=NOW,
    )
    assert stored == 5
    counts = await store.read(case_store.outcome_counts, job_id)
    assert counts == {"passed": 2, "failed": 1, "skipped": 1, "error": 1}
    listed = await store.read(case_store.list_job_cases, job_id)
    assert [case.name for case in listed] == ["t1", "t3", "t2", "t0", "t4"]
    history = await store.read(case_store.case_history, "c.t1")
    assert [case.outcome for case in history] == ["failed"]


async def test_a_deleted_job_is_removed_in_batches_with_everything_it_had(store: Store) -> None:
    from testfleet.store import deletions
    from testfleet.store import jobs as job_store
    from testfleet.store.events import add_events, event_row

    job_id, task_id = await store.write(job_with_task)

    def finish_with_events(conn: Connection) -> int:
        job_store.update_job(conn, job_id, state="completed", ended_at=NOW)
        add_events(conn, [event_row("log", NOW, job_id=job_id, task_id=task_id) for _ in range(25)])
        return job_store.insert_job(
            conn,
            name="retry",
            descriptor={},
            tags=[],
            runs=1,
            requestor="me",
            now=NOW,
            retried_from=job_id,
        )

    retry_id = await store.write(finish_with_events)
    outcome, _ = await store.write(deletions.request_deletion, job_id, "me", NOW)
    assert outcome == deletions.DeleteOutcome.ACCEPTED
    assert await store.read(deletions.visible_job, job_id) is None
    listed, _ = await store.read(job_store.list_jobs, job_store.JobQuery())
    assert [job.id for job in listed] == [retry_id]
    assert await store.write(deletions.claim_deletions, "h", NOW, NOW) == [job_id]
    batches = 0
    while not await store.write(deletions.delete_some, job_id, 10):
        batches += 1
    assert batches >= 3
    assert await store.read(job_store.get_job, job_id) is None
    retry = await store.read(job_store.get_job, retry_id)
    assert retry is not None and retry.retried_from is None


async def test_retention_picks_expired_jobs_the_longest_tag_wins(store: Store) -> None:
    from datetime import timedelta

    from testfleet.store import deletions
    from testfleet.store import jobs as job_store

    def finished(conn: Connection, tags: list[str], days_ago: float) -> int:
        job_id = add_job(conn, tags=tags)
        job_store.update_job(conn, job_id, state="failed", ended_at=NOW - timedelta(days=days_ago))
        return job_id

    old = await store.write(finished, [], 10)
    young = await store.write(finished, [], 1)
    nightly_old = await store.write(finished, ["nightly"], 3)
    both = await store.write(finished, ["nightly", "release"], 20)
    release_old = await store.write(finished, ["release"], 100)
    expired = await store.write(
        deletions.queue_expired, NOW, 7.0, {"nightly": 2.0, "release": 30.0}
    )
    assert sorted(expired) == sorted([old, nightly_old, release_old])
    assert young not in expired and both not in expired
