"""Test cases: a job's (failed first), and one case's history across jobs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from testfleet.hub.errors import ApiError
from testfleet.hub.reports.service import case_info, histories
from testfleet.hub.routes.deps import HubDep, Reader, RowId
from testfleet.protocol.results import CaseHistoryList, TestCaseList
from testfleet.store import testcases as case_store
from testfleet.store.deletions import visible_job

router = APIRouter(prefix="/api/v1", tags=["test cases"])
OutcomeFilter = Literal["passed", "failed", "error", "skipped"]


@router.get(
    "/jobs/{job_id}/testcases",
    response_model=TestCaseList,
    summary="A job's test cases: failed and errored first, then skipped, then passed",
)
async def job_cases(
    job_id: RowId,
    hub: HubDep,
    _: Reader,
    outcome: Annotated[list[OutcomeFilter], Query()] = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,9}$")] = None,
) -> TestCaseList:
    if await hub.store.read(visible_job, job_id) is None:
        raise ApiError(404, "job_not_found", f"job {job_id} does not exist")
    offset = int(cursor or 0)
    records = await hub.store.read(
        case_store.list_job_cases, job_id, outcomes=outcome, offset=offset, limit=limit + 1
    )
    more = len(records) > limit
    return TestCaseList(
        server_id=hub.server_id,
        cases=[case_info(record) for record in records[:limit]],
        next_cursor=str(offset + limit) if more else None,
    )


@router.get(
    "/testcases",
    response_model=CaseHistoryList,
    summary="A test case's history across jobs (by name, or classname.name); flaky flagged",
)
async def case_history(
    hub: HubDep,
    _: Reader,
    name: Annotated[str, Query(min_length=1, max_length=1000)],
    classname: Annotated[str | None, Query(max_length=500)] = None,
    job_name: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> CaseHistoryList:
    records = await hub.store.read(
        case_store.case_history, name, classname=classname, job_name=job_name, limit=limit
    )
    return histories(hub.server_id, name, records)
