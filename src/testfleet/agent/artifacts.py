"""The agent's side of artifacts: find the files a step declared, and upload each to the hub,
streamed, checksummed and resumed after a dropped connection.

Protocol (docs/results.md): announce the file (`POST /api/v1/tasks/{task}/artifacts` with its
path, size and sha256), then `PUT /api/v1/uploads/{id}` its bytes from `Upload-Offset`; after a
failure, `GET /api/v1/uploads/{id}` says how much arrived and the rest is sent. Files are read
in blocks: memory stays flat whatever their size.
"""

from __future__ import annotations

import asyncio
import glob
import hashlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from testfleet.protocol.artifacts import glob_problem, path_problem
from testfleet.protocol.results import UploadCreate, UploadState
from testfleet.steps.base import LogStream

_log = logging.getLogger(__name__)
BLOCK = 1024 * 1024
MAX_FILES = 10_000
ATTEMPTS = 20
DEADLINE = 600.0  # seconds one file may take, retries included

Log = Callable[[LogStream, str], Awaitable[None]]
"""Where the uploader reports: (stream, text) into the step's log."""


@dataclass(frozen=True)
class FoundFile:
    """A file to upload: its path relative to the working directory, and where it is."""

    path: str
    location: Path


def collect(workdir: Path, globs: list[str]) -> tuple[list[FoundFile], list[str]]:
    """The regular files matching `globs` inside `workdir`, and what was skipped and why.

    A match that leads outside the directory (a symlink, say) is skipped, never uploaded.
    """
    root = workdir.resolve()
    found: dict[str, FoundFile] = {}
    problems: list[str] = []
    for pattern in globs:
        problem = glob_problem(pattern)
        if problem is not None:
            problems.append(problem)
            continue
        matches = sorted(glob.glob(pattern, root_dir=root, recursive=True))
        if not matches:
            problems.append(f"{pattern!r} matched no file")
        for match in matches:
            location = root / match
            relative = Path(match).as_posix()
            if relative in found or not location.is_file():
                continue
            if not location.resolve().is_relative_to(root):
                problems.append(f"{relative} skipped: it leads outside the working directory")
                continue
            if (why := path_problem(relative)) is not None:
                problems.append(f"{relative} skipped: {why}")
                continue
            if len(found) >= MAX_FILES:
                problems.append(f"more than {MAX_FILES} files match; the rest are skipped")
                return list(found.values()), problems
            found[relative] = FoundFile(relative, location)
    return list(found.values()), problems


def digest(location: Path) -> tuple[int, str]:
    """(size, sha256) of a file, read in blocks."""
    hasher = hashlib.sha256()
    size = 0
    with location.open("rb") as file:
        while block := file.read(BLOCK):
            hasher.update(block)
            size += len(block)
    return size, hasher.hexdigest()


class Refused(Exception):
    """The hub refused the file for good (too large, invalid); the message says why."""


class ArtifactUploader:
    """Uploads files to the hub with the agent's token."""

    def __init__(
        self,
        hub_url: str,
        token: str | None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_delay: float = 0.2,
    ) -> None:
        self._hub_url = hub_url.rstrip("/")
        self._token = token
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._retry_delay = retry_delay

    @property
    def _http(self) -> httpx.AsyncClient:
        """The HTTP client, made at the first upload: making one costs a TLS context (tens
        of milliseconds), which an agent that never uploads should not pay at start."""
        if self._client is None:
            headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
            self._client = httpx.AsyncClient(
                base_url=self._hub_url,
                headers=headers,
                timeout=httpx.Timeout(60.0, connect=10.0),
                transport=self._transport,
            )
        return self._client

    async def aclose(self) -> None:
        """Close the connections (if an upload opened any)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def upload(self, task_id: int, step_index: int, file: FoundFile) -> UploadState:
        """Upload one file; raises Refused (for good) or the last error after retries."""
        size, sha256 = await asyncio.to_thread(digest, file.location)
        body = UploadCreate(step_index=step_index, path=file.path, size=size, sha256=sha256)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        state = await self._retrying(partial(self._announce, task_id, body), deadline)
        changed_once = False
        for attempt in range(1, ATTEMPTS + 1):
            if state.complete:
                return state
            try:
                state = await self._send(state, file.location)
                continue
            except Refused as error:
                if "checksum_mismatch" not in str(error) or changed_once:
                    raise
                changed_once = True  # the file changed while it was read: once more, afresh
                size, sha256 = await asyncio.to_thread(digest, file.location)
                body = UploadCreate(step_index=step_index, path=file.path, size=size, sha256=sha256)
                state = await self._retrying(partial(self._announce, task_id, body), deadline)
                continue
            except (httpx.TransportError, _Retry) as error:
                if attempt == ATTEMPTS or loop.time() > deadline:
                    raise
                _log.info("upload of %s interrupted (%s); resuming", file.path, error)
            await asyncio.sleep(self._delay(attempt))
            upload_id = state.upload_id
            state = await self._retrying(partial(self._state, upload_id), deadline)
        raise TimeoutError(f"{file.path}: not uploaded after {ATTEMPTS} attempts")

    async def _retrying(
        self, call: Callable[[], Awaitable[UploadState]], deadline: float
    ) -> UploadState:
        loop = asyncio.get_running_loop()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await call()
            except (httpx.TransportError, _Retry):
                if attempt == ATTEMPTS or loop.time() > deadline:
                    raise
            await asyncio.sleep(self._delay(attempt))
        raise AssertionError("unreachable")

    def _delay(self, attempt: int) -> float:
        return float(min(5.0, self._retry_delay * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2))

    async def _announce(self, task_id: int, body: UploadCreate) -> UploadState:
        response = await self._http.post(
            f"/api/v1/tasks/{task_id}/artifacts",
            content=body.model_dump_json(),
            headers={"Content-Type": "application/json"},
        )
        return _state_of(response)

    async def _state(self, upload_id: int) -> UploadState:
        return _state_of(await self._http.get(f"/api/v1/uploads/{upload_id}"))

    async def _send(self, state: UploadState, location: Path) -> UploadState:
        response = await self._http.put(
            f"/api/v1/uploads/{state.upload_id}",
            content=_blocks(location, state.offset),
            headers={
                "Upload-Offset": str(state.offset),
                "Content-Length": str(state.size - state.offset),
                "Content-Type": "application/octet-stream",
            },
            timeout=httpx.Timeout(60.0, connect=10.0, write=60.0),
        )
        return _state_of(response)


class _Retry(Exception):
    """An answer worth asking again about (the hub is busy, or lost the thread)."""


def _state_of(response: httpx.Response) -> UploadState:
    if response.is_success:
        return UploadState.model_validate_json(response.content)
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {}
    code = str(body.get("code", f"http_{response.status_code}"))
    message = str(body.get("message", response.text[:300]))
    if response.status_code in (409, 429) or response.status_code >= 500:
        raise _Retry(f"{code}: {message}")
    raise Refused(f"{code}: {message}")


async def _blocks(location: Path, offset: int) -> AsyncIterator[bytes]:
    file = await asyncio.to_thread(location.open, "rb")
    try:
        await asyncio.to_thread(file.seek, offset)
        while block := await asyncio.to_thread(file.read, BLOCK):
            yield block
    finally:
        await asyncio.to_thread(file.close)


async def upload_step_artifacts(
    uploader: ArtifactUploader,
    workdir: Path,
    task_id: int,
    step_index: int,
    globs: list[str],
    log: Log,
) -> None:
    """Upload what a step's globs match, reporting each file (or problem) in the step's log."""
    files, problems = await asyncio.to_thread(collect, workdir, globs)
    for problem in problems:
        await log("stderr", f"artifacts: {problem}\n")
    for file in files:
        try:
            state = await uploader.upload(task_id, step_index, file)
        except asyncio.CancelledError:
            raise
        except Refused as error:
            await log("stderr", f"artifacts: {file.path} refused by the hub: {error}\n")
        except Exception as error:
            await log("stderr", f"artifacts: {file.path} not uploaded: {error!r}\n")
        else:
            await log("info", f"artifacts: uploaded {file.path} ({state.size} bytes)\n")
