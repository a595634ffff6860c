"""The results endpoints (artifacts, test cases, webhooks, schedules, deleting jobs) as
request descriptions, and the methods both clients share for them (mixins)."""

from __future__ import annotations

import hashlib
from typing import Any, BinaryIO, TypeVar

import httpx

from testfleet.client import responses
from testfleet.client.calls import API, Call, Params
from testfleet.protocol.results import ArtifactList

T = TypeVar("T")


def _optional(**values: object) -> Params:
    return [(key, str(value)) for key, value in values.items() if value is not None]


def artifacts(job_id: int) -> Call[ArtifactList]:
    """`GET /api/v1/jobs/{id}/artifacts`."""
    return Call(
        "GET", f"{API}/jobs/{job_id}/artifacts", lambda r: responses.parse_model(r, ArtifactList)
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

    async def _call(self, call: Call[T]) -> T:
        raise NotImplementedError

    async def artifacts(self, job_id: int) -> ArtifactList:
        """A job's artifacts, each with its download path."""
        return await self._call(artifacts(job_id))


def _download_timeout(client: Any) -> httpx.Timeout:
    return httpx.Timeout(client.timeout, read=max(60.0, client.timeout))
