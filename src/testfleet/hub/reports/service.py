"""Test reports: a JUnit artifact read into test cases as soon as it is stored; a job's counts
with its failed cases first; a case's history across jobs, flaky cases flagged."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import asdict

from sqlalchemy import Connection

from testfleet.hub.artifacts.storage import ArtifactStorage
from testfleet.hub.reports.junit import (
    MAX_REPORT_BYTES,
    SNIFF_BYTES,
    ReportError,
    looks_like_junit,
    parse_junit,
)
from testfleet.protocol.results import (
    CaseHistory,
    CaseHistoryList,
    TestCaseCounts,
    TestCaseInfo,
    TestReport,
)
from testfleet.protocol.wire import utcnow
from testfleet.store import artifacts as artifact_store
from testfleet.store import testcases as case_store
from testfleet.store.db import Store
from testfleet.store.jobs import get_job
from testfleet.store.result_records import ArtifactRecord, TestCaseRecord

_log = logging.getLogger(__name__)
FAILED_IN_STATUS = 100
BAD = ("failed", "error")


class ReportReader:
    """Reads artifacts that are JUnit reports into test cases."""

    def __init__(self, store: Store, storage: ArtifactStorage) -> None:
        self._store = store
        self._storage = storage

    async def read(self, artifact: ArtifactRecord) -> int | None:
        """Store the cases of `artifact` if it is a JUnit report; returns how many (None:
        not a report). A report that cannot be read is noted on the artifact, nothing else."""
        if not artifact.path.lower().endswith(".xml"):
            return None
        head = await self._read(artifact, SNIFF_BYTES)
        if not looks_like_junit(artifact.path, head):
            return None
        try:
            if artifact.size > MAX_REPORT_BYTES:
                raise ReportError(f"larger than {MAX_REPORT_BYTES // (1024 * 1024)} MiB; not read")
            data = await self._read(artifact, artifact.size)
            cases = await asyncio.to_thread(parse_junit, data)
        except ReportError as error:
            _log.info("artifact %d (%s): %s", artifact.id, artifact.path, error)
            await self._store.write(artifact_store.note_report, artifact.id, None, str(error))
            return None
        rows = [asdict(case) for case in cases]
        return await self._store.write(_store_cases, artifact, rows)

    async def _read(self, artifact: ArtifactRecord, size: int) -> bytes:
        blocks = [block async for block in self._storage.read(artifact.key, 0, size)]
        return b"".join(blocks)


def _store_cases(conn: Connection, artifact: ArtifactRecord, rows: list[dict[str, object]]) -> int:
    job = get_job(conn, artifact.job_id)
    count = case_store.insert_cases(
        conn,
        job_id=artifact.job_id,
        job_name=job.name if job is not None else "",
        artifact_id=artifact.id,
        task_id=artifact.task_id,
        cases=rows,
        now=utcnow(),
    )
    artifact_store.note_report(conn, artifact.id, count, None)
    return count


def job_report(conn: Connection, job_id: int) -> TestReport | None:
    """A job's test cases for its status (None: it has no reports)."""
    counts = case_store.outcome_counts(conn, job_id)
    problems = artifact_store.report_errors(conn, job_id)
    if not counts and not problems:
        return None
    failed = case_store.list_job_cases(conn, job_id, outcomes=BAD, limit=FAILED_IN_STATUS)
    return TestReport(
        counts=TestCaseCounts(total=sum(counts.values()), **counts),
        failed_cases=[case_info(case) for case in failed],
        report_errors=[f"{path}: {problem}" for path, problem in problems],
    )


def case_info(record: TestCaseRecord) -> TestCaseInfo:
    """A stored case as the API shows it."""
    return TestCaseInfo(
        case_id=record.id,
        job_id=record.job_id,
        job_name=record.job_name,
        task_id=record.task_id,
        suite=record.suite,
        classname=record.classname,
        name=record.name,
        outcome=record.outcome,
        duration=record.duration,
        message=record.message,
        detail=record.detail,
        at=record.at,
    )


def histories(server_id: str, name: str, records: list[TestCaseRecord]) -> CaseHistoryList:
    """Cases grouped by (suite, class, name, job name), newest first; flaky where one
    group both passed and failed."""
    groups: defaultdict[tuple[str, str, str, str], list[TestCaseRecord]] = defaultdict(list)
    for record in records:
        groups[(record.suite, record.classname, record.name, record.job_name)].append(record)
    result = []
    for (suite, classname, case_name, job_name), runs in groups.items():
        passed = sum(1 for run in runs if run.outcome == "passed")
        failed = sum(1 for run in runs if run.outcome in BAD)
        result.append(
            CaseHistory(
                suite=suite,
                classname=classname,
                name=case_name,
                job_name=job_name,
                flaky=passed > 0 and failed > 0,
                passed=passed,
                failed=failed,
                runs=[case_info(run) for run in runs],
            )
        )
    result.sort(key=lambda history: (not history.flaky, -history.runs[0].case_id))
    return CaseHistoryList(server_id=server_id, name=name, histories=result)
