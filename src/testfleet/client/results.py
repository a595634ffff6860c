"""The results endpoints (artifacts, test cases, webhooks, schedules, deleting jobs) as
request descriptions, and the methods both clients share for them (mixins)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, BinaryIO, TypeVar

import httpx

from testfleet.client import responses
from testfleet.client.calls import API, Call, Params
from testfleet.protocol.api import EventList
from testfleet.protocol.results import (
    Acknowledgement,
    ArtifactList,
    CaseHistoryList,
    TestCaseList,
)

T = TypeVar("T")


def _optional(**values: object) -> Params:
    return [(key, str(value)) for key, value in values.items() if value is not None]


def artifacts(job_id: int) -> Call[ArtifactList]:
    """`GET /api/v1/jobs/{id}/artifacts`."""
    return Call(
        "GET", f"{API}/jobs/{job_id}/artifacts", lambda r: responses.parse_model(r, ArtifactList)
    )


def job_cases(
    job_id: int,
    outcomes: Iterable[str] = (),
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[TestCaseList]:
    """`GET /api/v1/jobs/{id}/testcases`: failed first."""
    params: Params = [("outcome", outcome) for outcome in outcomes]
    params += _optional(limit=limit, cursor=cursor)
    return Call(
        "GET",
        f"{API}/jobs/{job_id}/testcases",
        lambda r: responses.parse_model(r, TestCaseList),
        params=params,
    )


def case_history(
    name: str, classname: str | None = None, job_name: str | None = None, limit: int | None = None
) -> Call[CaseHistoryList]:
    """`GET /api/v1/testcases?name=...`."""
    params: Params = [("name", name)]
    params += _optional(classname=classname, job_name=job_name, limit=limit)
    return Call(
        "GET",
        f"{API}/testcases",
        lambda r: responses.parse_model(r, CaseHistoryList),
        params=params,
    )


def delete_job(job_id: int) -> Call[Acknowledgement]:
    """`DELETE /api/v1/jobs/{id}`."""
    return Call(
        "DELETE", f"{API}/jobs/{job_id}", lambda r: responses.parse_model(r, Acknowledgement)
    )


def log_events(job_id: int, after: int = 0, limit: int = 1000) -> Call[EventList]:
    """`GET /api/v1/jobs/{id}/events?kind=log`: a page of log events."""
    params: Params = [("kind", "log"), ("after", str(after)), ("limit", str(limit))]
    return Call(
        "GET",
        f"{API}/jobs/{job_id}/events",
        lambda r: responses.parse_model(r, EventList),
        params=params,
    )


class ResultsMethods:
    """The results methods of the blocking `Client`."""

    base_url: str
    _http: httpx.Client

    def _call(self, call: Call[T]) -> T:
        raise NotImplementedError

    def artifacts(self, job_id: int) -> ArtifactList:
        """A job's artifacts, each with its download path."""
        return self._call(artifacts(job_id))

    def job_cases(
        self,
        job_id: int,
        outcomes: Iterable[str] = (),
        limit: int | None = None,
        cursor: str | None = None,
    ) -> TestCaseList:
        """A page of a job's test cases, failed and errored first."""
        return self._call(job_cases(job_id, outcomes, limit, cursor))

    def case_history(
        self,
        name: str,
        classname: str | None = None,
        job_name: str | None = None,
        limit: int | None = None,
    ) -> CaseHistoryList:
        """A test case's history across jobs (flaky ones flagged)."""
        return self._call(case_history(name, classname, job_name, limit))

    def log_events(self, job_id: int, after: int = 0, limit: int = 1000) -> EventList:
        """A page of a job's log events (with their task and step)."""
        return self._call(log_events(job_id, after, limit))

    def delete_job(self, job_id: int) -> Acknowledgement:
        """Delete a finished job with its events and artifacts (they go in the background)."""
        return self._call(delete_job(job_id))

    def download(self, path: str, sink: BinaryIO) -> str:
        """Stream the file at API path `path` (an artifact's `download`) into `sink`;
        returns the sha256 of what was written."""
        hasher = hashlib.sha256()
        try:
            with self._http.stream("GET", path, timeout=_download_timeout(self)) as response:
                if not response.is_success:
                    response.read()
                    responses.raise_for_error(response)
                for block in response.iter_bytes(1024 * 1024):
                    sink.write(block)
                    hasher.update(block)
        except httpx.TransportError as error:
            raise responses.unreachable(self.base_url, error) from None
        return hasher.hexdigest()


class AsyncResultsMethods:
    """The results methods of the asyncio `AsyncClient`."""

    base_url: str
    _http: httpx.AsyncClient

    async def _call(self, call: Call[T]) -> T:
        raise NotImplementedError

    async def log_events(self, job_id: int, after: int = 0, limit: int = 1000) -> EventList:
        """A page of a job's log events (with their task and step)."""
        return await self._call(log_events(job_id, after, limit))

    async def download(self, path: str, sink: BinaryIO) -> str:
        """Stream the file at API path `path` (an artifact's `download`) into `sink`;
        returns the sha256 of what was written. Writes to `sink` block the loop briefly
        (one 1 MiB block at a time)."""
        hasher = hashlib.sha256()
        try:
            async with self._http.stream("GET", path, timeout=_download_timeout(self)) as response:
                if not response.is_success:
                    await response.aread()
                    responses.raise_for_error(response)
                async for block in response.aiter_bytes(1024 * 1024):
                    sink.write(block)
                    hasher.update(block)
        except httpx.TransportError as error:
            raise responses.unreachable(self.base_url, error) from None
        return hasher.hexdigest()

    async def artifacts(self, job_id: int) -> ArtifactList:
        """A job's artifacts, each with its download path."""
        return await self._call(artifacts(job_id))

    async def delete_job(self, job_id: int) -> Acknowledgement:
        """Delete a finished job with its events and artifacts (they go in the background)."""
        return await self._call(delete_job(job_id))

    async def job_cases(
        self,
        job_id: int,
        outcomes: Iterable[str] = (),
        limit: int | None = None,
        cursor: str | None = None,
    ) -> TestCaseList:
        """A page of a job's test cases, failed and errored first."""
        return await self._call(job_cases(job_id, outcomes, limit, cursor))

    async def case_history(
        self,
        name: str,
        classname: str | None = None,
        job_name: str | None = None,
        limit: int | None = None,
    ) -> CaseHistoryList:
        """A test case's history across jobs (flaky ones flagged)."""
        return await self._call(case_history(name, classname, job_name, limit))


def _download_timeout(client: Any) -> httpx.Timeout:
    return httpx.Timeout(client.timeout, read=max(60.0, client.timeout))
