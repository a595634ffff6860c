"""The JSON bodies of the results API: artifacts, test cases, webhooks, schedules.

(`api.py` holds the job API's bodies; these are the ones issue 14 added.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from testfleet.protocol.artifacts import MAX_PATH

SHA256 = r"^[0-9a-f]{64}$"


class UploadCreate(BaseModel):
    """`POST /api/v1/tasks/{task_id}/artifacts`: an agent announces a file it will upload."""

    model_config = ConfigDict(extra="forbid")

    step_index: int = Field(ge=0)
    path: str = Field(min_length=1, max_length=MAX_PATH)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=SHA256)


class UploadState(BaseModel):
    """Where an upload stands: bytes received so far (send the rest from `offset`)."""

    upload_id: int
    offset: int
    size: int
    complete: bool


class ArtifactInfo(BaseModel):
    """One stored file of a job."""

    artifact_id: int
    job_id: int
    task_id: int
    device_name: str
    step_index: int
    path: str
    size: int
    sha256: str
    created_at: datetime
    download: str = Field(description="The API path that downloads this file.")
    report_cases: int | None = Field(
        None, description="Test cases parsed from it, when it is a JUnit XML report."
    )
    report_error: str | None = Field(
        None, description="Why it could not be read as a test report (the job is unaffected)."
    )


class ArtifactList(BaseModel):
    """`GET /api/v1/jobs/{id}/artifacts`."""

    server_id: str
    job_id: int
    artifacts: list[ArtifactInfo]
    total_size: int
    zip: str = Field(description="The API path that downloads every file as one zip.")


Outcome = Literal["passed", "failed", "error", "skipped"]


class TestCaseInfo(BaseModel):
    """One test case from a JUnit report."""

    __test__ = False

    case_id: int
    job_id: int
    job_name: str
    task_id: int
    suite: str
    classname: str
    name: str
    outcome: Outcome
    duration: float | None = None
    message: str | None = None
    detail: str | None = None
    at: datetime


class TestCaseCounts(BaseModel):
    """How a job's test cases ended."""

    __test__ = False

    total: int = 0
    passed: int = 0
    failed: int = 0
    error: int = 0
    skipped: int = 0


class TestReport(BaseModel):
    """The test cases of a job in its status: counts, the failed ones first."""

    __test__ = False

    counts: TestCaseCounts
    failed_cases: list[TestCaseInfo] = Field(
        default_factory=list, description="Failed and errored cases (the first 100)."
    )
    report_errors: list[str] = Field(
        default_factory=list, description="Report files that could not be read, and why."
    )


class TestCaseList(BaseModel):
    """A page of test cases, newest first; pass `next_cursor` as `cursor` for the next."""

    __test__ = False

    server_id: str
    cases: list[TestCaseInfo]
    next_cursor: str | None = None


class CaseHistory(BaseModel):
    """One case (suite, class and name) across jobs, newest first."""

    suite: str
    classname: str
    name: str
    job_name: str
    flaky: bool = Field(description="It both passed and failed on this job name.")
    passed: int
    failed: int
    runs: list[TestCaseInfo]


class CaseHistoryList(BaseModel):
    """`GET /api/v1/testcases?name=...`: the history of every case of that name."""

    server_id: str
    name: str
    histories: list[CaseHistory]


class Acknowledgement(BaseModel):
    """An action accepted: what it was about and where it stands."""

    server_id: str
    message: str
    data: dict[str, Any] = Field(default_factory=dict)
