"""Safe retries: the same Idempotency-Key gives the same job, never a second one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.support.inproc import one_test_job, running_hub

pytestmark = pytest.mark.anyio


async def test_the_same_key_gives_the_same_job(tmp_path: Path) -> None:
    body = json.dumps(one_test_job("once"))
    async with running_hub(tmp_path, max_running_jobs=0) as hub:
        answers = await asyncio.gather(
            *(
                hub.api.post("/api/v1/jobs", content=body, headers={"Idempotency-Key": "k-1"})
                for _ in range(5)
            )
        )
        other = await hub.api.post("/api/v1/jobs", content=body, headers={"Idempotency-Key": "k-2"})
        listed = (await hub.api.get("/api/v1/jobs")).json()["jobs"]

    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["job_id"] for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 4
    assert other.json()["job_id"] != answers[0].json()["job_id"]
    assert len(listed) == 2


async def test_a_key_used_for_another_descriptor_is_409(tmp_path: Path) -> None:
    async with running_hub(tmp_path, max_running_jobs=0) as hub:
        headers = {"Idempotency-Key": "k"}
        first = await hub.api.post("/api/v1/jobs", json=one_test_job("a"), headers=headers)
        second = await hub.api.post("/api/v1/jobs", json=one_test_job("b"), headers=headers)
        bad = await hub.api.post(
            "/api/v1/jobs", json=one_test_job("c"), headers={"Idempotency-Key": "with space"}
        )

    assert first.status_code == 201
    assert (second.status_code, second.json()["code"]) == (409, "idempotency_key_reused")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["location"] == "header.Idempotency-Key"


async def test_keys_belong_to_their_requestor(tmp_path: Path) -> None:
    async with running_hub(tmp_path, max_running_jobs=0) as hub:
        alice = {"Idempotency-Key": "k", "X-Testfleet-Requestor": "alice"}
        bob = {"Idempotency-Key": "k", "X-Testfleet-Requestor": "bob"}
        a = await hub.api.post("/api/v1/jobs", json=one_test_job(), headers=alice)
        b = await hub.api.post("/api/v1/jobs", json=one_test_job(), headers=bob)

    assert a.json()["job_id"] != b.json()["job_id"]
