"""Artifact uploads from agents (announced, streamed, checked, resumable) and their listing.

An agent announces a file (path, size, sha256) and streams its bytes with `Upload-Offset`;
after a dropped connection it asks how much arrived and sends the rest. The hub hashes what
it writes as it writes it; the file is listed only once its sha256 matches the announced one.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from testfleet.hub.artifacts.storage import ArtifactStorage, OffsetMismatch, StorageBusy, TooLong
from testfleet.hub.errors import ApiError
from testfleet.protocol.api import ErrorDetail
from testfleet.protocol.artifacts import path_problem
from testfleet.protocol.results import ArtifactInfo, ArtifactList, UploadCreate, UploadState
from testfleet.protocol.wire import utcnow
from testfleet.store import artifacts as artifact_store
from testfleet.store.db import Store
from testfleet.store.result_records import ArtifactRecord

_log = logging.getLogger(__name__)
API = "/api/v1"
HASHERS_KEPT = 256

OnComplete = Callable[[ArtifactRecord], Awaitable[object]]


@dataclass(frozen=True)
class ArtifactLimits:
    """How large one file, and all the files of one job, may be (bytes)."""

    per_file: int
    per_job: int


def human_size(size: int) -> str:
    """`1.5 GiB`, `300 KiB`, `12 B`."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def upload_state(artifact: ArtifactRecord, received: int) -> UploadState:
    """Where an upload stands."""
    complete = artifact.state == artifact_store.COMPLETE
    return UploadState(
        upload_id=artifact.id,
        offset=artifact.size if complete else received,
        size=artifact.size,
        complete=complete,
    )


class ArtifactService:
    """Receives agents' uploads and lists and serves the files."""

    def __init__(
        self,
        server_id: str,
        store: Store,
        storage: ArtifactStorage,
        limits: ArtifactLimits,
        on_complete: OnComplete | None = None,
    ) -> None:
        self._server_id = server_id
        self._store = store
        self.storage = storage
        self.limits = limits
        self._on_complete = on_complete
        self._hashers: OrderedDict[int, tuple[int, Any]] = OrderedDict()

    async def announce(self, task_id: int, body: UploadCreate) -> UploadState:
        """Start (or find again) the upload of one file of a task."""
        problem = path_problem(body.path)
        if problem is not None:
            raise ApiError(
                422, "invalid_path", problem, [ErrorDetail(location="/path", message=problem)]
            )
        if body.size > self.limits.per_file:
            raise ApiError(
                413,
                "artifact_too_large",
                f"{body.path} is {human_size(body.size)}; an artifact may be at most "
                f"{human_size(self.limits.per_file)} (hub option --max-artifact-size)",
            )
        announced = await self._store.write(
            artifact_store.announce_upload,
            task_id=task_id,
            step_index=body.step_index,
            path=body.path,
            size=body.size,
            sha256=body.sha256,
            job_limit=self.limits.per_job,
            now=utcnow(),
        )
        if announced.refusal == artifact_store.Refusal.UNKNOWN_TASK:
            raise ApiError(404, "task_not_found", f"task {task_id} does not exist")
        if announced.refusal == artifact_store.Refusal.JOB_LIMIT:
            raise ApiError(
                413,
                "job_artifacts_too_large",
                f"{body.path} ({human_size(body.size)}) would take the job's artifacts past "
                f"{human_size(self.limits.per_job)} (it has {human_size(announced.job_total)}; "
                "hub option --max-job-artifacts)",
            )
        assert announced.artifact is not None
        if announced.replaced:
            self._hashers.pop(announced.artifact.id, None)
            await self.storage.discard(announced.artifact.key)
        return upload_state(announced.artifact, await self.storage.received(announced.artifact.key))

    async def state(self, upload_id: int) -> UploadState:
        """How much of an upload has arrived."""
        artifact = await self._artifact(upload_id)
        return upload_state(artifact, await self.storage.received(artifact.key))

    async def receive(
        self, upload_id: int, offset: int, chunks: AsyncIterable[bytes]
    ) -> UploadState:
        """Write the bytes of an upload from `offset`; check and list the file once whole."""
        artifact = await self._artifact(upload_id)
        if artifact.state == artifact_store.COMPLETE:
            return upload_state(artifact, artifact.size)
        hasher = await self._hasher(artifact, offset)
        try:
            held = await self.storage.receive(artifact.key, offset, chunks, artifact.size, hasher)
        except StorageBusy:
            raise ApiError(
                409, "upload_busy", f"upload {upload_id} is being written by another request"
            ) from None
        except OffsetMismatch as error:
            raise ApiError(
                409,
                "offset_mismatch",
                f"upload {upload_id} holds {error.received} bytes; continue from there",
            ) from None
        except TooLong:
            self._hashers.pop(upload_id, None)
            await self.storage.discard(artifact.key)
            raise ApiError(
                413,
                "upload_too_long",
                f"more than the announced {artifact.size} bytes came for {artifact.path}; "
                "the upload starts over",
            ) from None
        except BaseException:
            self._hashers.pop(upload_id, None)  # the bytes kept are hashed again on resume
            raise
        if held < artifact.size:
            self._keep_hasher(upload_id, held, hasher)
            return upload_state(artifact, held)
        self._hashers.pop(upload_id, None)
        return await self._finish(artifact, hasher.hexdigest())

    async def _finish(self, artifact: ArtifactRecord, sha256: str) -> UploadState:
        if sha256 != artifact.sha256:
            await self.storage.discard(artifact.key)
            raise ApiError(
                422,
                "checksum_mismatch",
                f"{artifact.path}: the bytes received have sha256 {sha256}, not the announced "
                f"{artifact.sha256}; upload it again from offset 0",
            )
        await self.storage.commit(artifact.key)
        if not await self._store.write(artifact_store.complete_artifact, artifact.id, utcnow()):
            raise ApiError(404, "upload_not_found", f"upload {artifact.id} is gone (job deleted)")
        if self._on_complete is not None:
            try:
                await self._on_complete(artifact)
            except Exception:  # a report that cannot be read never fails the upload
                _log.exception("reading artifact %d (%s) failed", artifact.id, artifact.path)
        return UploadState(
            upload_id=artifact.id, offset=artifact.size, size=artifact.size, complete=True
        )

    async def _hasher(self, artifact: ArtifactRecord, offset: int) -> Any:
        kept = self._hashers.pop(artifact.id, None)
        if kept is not None and kept[0] == offset:
            return kept[1]
        if offset == 0:
            return hashlib.sha256()
        return await self.storage.digest(artifact.key, offset)

    def _keep_hasher(self, upload_id: int, held: int, hasher: Any) -> None:
        self._hashers[upload_id] = (held, hasher)
        while len(self._hashers) > HASHERS_KEPT:
            self._hashers.popitem(last=False)

    async def _artifact(self, upload_id: int) -> ArtifactRecord:
        artifact = await self._store.read(artifact_store.get_artifact, upload_id)
        if artifact is None:
            raise ApiError(404, "upload_not_found", f"upload {upload_id} does not exist")
        return artifact

    async def records(self, job_id: int) -> list[ArtifactRecord]:
        """A job's complete artifacts."""
        return await self._store.read(artifact_store.list_artifacts, job_id)

    async def listing(self, job_id: int) -> ArtifactList:
        """A job's artifacts (complete ones only)."""
        records = await self.records(job_id)
        return ArtifactList(
            server_id=self._server_id,
            job_id=job_id,
            artifacts=[artifact_info(record) for record in records],
            total_size=sum(record.size for record in records),
            zip=f"{API}/jobs/{job_id}/artifacts.zip",
        )

    async def complete_artifact(self, job_id: int, artifact_id: int) -> ArtifactRecord:
        """One listed artifact of a job, or 404."""
        artifact = await self._store.read(artifact_store.get_artifact, artifact_id)
        if (
            artifact is None
            or artifact.job_id != job_id
            or artifact.state != artifact_store.COMPLETE
        ):
            raise ApiError(404, "artifact_not_found", f"job {job_id} has no artifact {artifact_id}")
        return artifact


def artifact_info(record: ArtifactRecord) -> ArtifactInfo:
    """An artifact as the API shows it."""
    return ArtifactInfo(
        artifact_id=record.id,
        job_id=record.job_id,
        task_id=record.task_id,
        device_name=record.device_name,
        step_index=record.step_index,
        path=record.path,
        size=record.size,
        sha256=record.sha256,
        created_at=record.completed_at or record.created_at,
        download=f"{API}/jobs/{record.job_id}/artifacts/{record.id}",
        report_cases=record.report_cases,
        report_error=record.report_error,
    )


def zip_name(record: ArtifactRecord) -> str:
    """Where a file goes in the zip of a job's artifacts: one folder per task and device."""
    device = "".join(c if c.isalnum() or c in "._-" else "_" for c in record.device_name)
    return f"{record.task_id}-{device or 'device'}/{record.path}"
