"""The job API's transactions: a refusal is a result, never an exception in the batch."""

from __future__ import annotations

import asyncio

import pytest

from testfleet.protocol.states import JobState
from testfleet.store import Store
from testfleet.store import jobs as job_store
from testfleet.store.job_ops import StopOutcome, request_stop
from tests.store.helpers import NOW, add_job

pytestmark = pytest.mark.anyio


async def test_stopping_a_finished_or_unknown_job_is_a_refusal_not_an_error(store: Store) -> None:
    finished = await store.write(add_job)
    await store.write(job_store.update_job, finished, state=JobState.COMPLETED)

    done, missing = await asyncio.gather(
        store.write(request_stop, finished, "me", NOW), store.write(request_stop, 9999, "me", NOW)
    )

    assert (done.outcome, done.state) == (StopOutcome.ALREADY_FINISHED, JobState.COMPLETED)
    assert missing.outcome == StopOutcome.NOT_FOUND


async def test_a_queued_job_is_cancelled_and_a_claimed_one_cancelling(store: Store) -> None:
    queued, claimed = await store.write(lambda conn: [add_job(conn), add_job(conn)])
    await store.write(job_store.update_job, claimed, owner="hub-a", state=JobState.RUNNING)

    first = await store.write(request_stop, queued, "me", NOW)
    second = await store.write(request_stop, claimed, "me", NOW)

    assert (first.outcome, first.state) == (StopOutcome.CANCELLED, JobState.CANCELLED)
    assert (second.outcome, second.state) == (StopOutcome.CANCELLING, JobState.CANCELLING)
    job = await store.read(job_store.get_job, claimed)
    assert job is not None and job.stop_requested


async def test_one_key_on_two_hubs_at_once_makes_one_job(store: Store, db_url: str) -> None:
    from testfleet.store.job_ops import submit_job_once
    from testfleet.store.tables import jobs
    from tests.store.helpers import count_rows, other_hubs

    def submit(conn: object) -> object:
        return submit_job_once(
            conn,  # type: ignore[arg-type]
            key="same",
            request_hash="h",
            name="j",
            descriptor={},
            tags=["t"],
            runs=1,
            requestor="me",
            now=NOW,
        )

    async with other_hubs(db_url, 2) as (hub_a, hub_b):
        results = await asyncio.gather(*(h.write(submit) for h in (hub_a, hub_b) for _ in range(4)))
    made = await store.read(count_rows, jobs)

    assert made == 1
    assert len({r.job_id for r in results}) == 1  # type: ignore[attr-defined]
    assert sum(not r.replayed for r in results) == 1  # type: ignore[attr-defined]
