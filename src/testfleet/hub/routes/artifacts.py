"""Artifacts: agents' uploads (announce, stream, resume) and the job's files for everyone."""

from __future__ import annotations

import mimetypes
import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from testfleet.hub.artifacts.service import zip_name
from testfleet.hub.artifacts.zipstream import zip_stream
from testfleet.hub.auth import AGENT, Principal, require
from testfleet.hub.errors import ApiError
from testfleet.hub.routes.deps import SELF_BOUNDED_BODY, HubDep, Reader, RowId
from testfleet.hub.runtime import Hub
from testfleet.protocol.results import ArtifactList, UploadCreate, UploadState
from testfleet.protocol.types import INT64_MAX
from testfleet.store.deletions import visible_job

router = APIRouter(prefix="/api/v1", tags=["artifacts"])
AgentCaller = Annotated[Principal, Depends(require(AGENT))]
OFFSET_HEADER = "Upload-Offset"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@router.post(
    "/tasks/{task_id}/artifacts",
    status_code=201,
    response_model=UploadState,
    summary="(agents) Announce a file to upload; answers where to continue from",
)
async def announce(task_id: RowId, body: UploadCreate, hub: HubDep, _: AgentCaller) -> UploadState:
    return await hub.artifacts.announce(task_id, body)


@router.get(
    "/uploads/{upload_id}", response_model=UploadState, summary="(agents) How much has arrived"
)
async def upload_state(
    upload_id: RowId, hub: HubDep, _: AgentCaller, response: Response
) -> UploadState:
    state = await hub.artifacts.state(upload_id)
    response.headers[OFFSET_HEADER] = str(state.offset)
    return state


@router.put(
    "/uploads/{upload_id}",
    response_model=UploadState,
    summary="(agents) Send an upload's bytes from Upload-Offset; resumable",
    # The artifact service bounds an upload by its announced size and the hub's limits
    # while it streams in; the hub-wide body limit does not apply here.
    max_body_size=SELF_BOUNDED_BODY,
)
async def upload_bytes(
    upload_id: RowId,
    request: Request,
    hub: HubDep,
    _: AgentCaller,
    response: Response,
    upload_offset: Annotated[int, Header(alias=OFFSET_HEADER, ge=0, le=INT64_MAX)],
) -> UploadState | Response:
    try:
        state = await hub.artifacts.receive(upload_id, upload_offset, request.stream())
    except ClientDisconnect:  # what arrived is kept; the agent resumes from there
        return Response(status_code=400)
    response.headers[OFFSET_HEADER] = str(state.offset)
    return state


@router.get(
    "/jobs/{job_id}/artifacts",
    response_model=ArtifactList,
    summary="A job's artifacts, each with its download path",
)
async def list_artifacts(job_id: RowId, hub: HubDep, _: Reader) -> ArtifactList:
    await _require_job(hub, job_id)
    return await hub.artifacts.listing(job_id)


@router.get(
    "/jobs/{job_id}/artifacts.zip",
    response_class=StreamingResponse,
    summary="Every artifact of a job in one zip (a folder per task and device)",
)
async def download_zip(job_id: RowId, hub: HubDep, _: Reader) -> StreamingResponse:
    await _require_job(hub, job_id)
    listing = await hub.artifacts.listing(job_id)
    storage = hub.artifacts.storage
    records = [
        await hub.artifacts.complete_artifact(job_id, a.artifact_id) for a in listing.artifacts
    ]
    entries = [
        (zip_name(r), r.completed_at or r.created_at, lambda key=r.key: storage.read(key))
        for r in records
    ]
    return StreamingResponse(
        zip_stream(entries),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="job-{job_id}-artifacts.zip"'},
    )


@router.get(
    "/jobs/{job_id}/artifacts/{artifact_id}",
    response_class=StreamingResponse,
    summary="Download one artifact (Range requests supported)",
)
async def download(
    job_id: RowId,
    artifact_id: RowId,
    hub: HubDep,
    _: Reader,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    await _require_job(hub, job_id)
    artifact = await hub.artifacts.complete_artifact(job_id, artifact_id)
    name = artifact.path.rsplit("/", 1)[-1]
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    headers = {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
        "ETag": f'"{artifact.sha256}"',
        "Accept-Ranges": "bytes",
        "X-Checksum-Sha256": artifact.sha256,
    }
    start, end, status = 0, artifact.size, 200
    if range_header:
        start, end = _byte_range(range_header, artifact.size)
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{artifact.size}"
    headers["Content-Length"] = str(end - start)
    body = hub.artifacts.storage.read(artifact.key, start, end)
    return StreamingResponse(body, status_code=status, media_type=kind, headers=headers)


def _byte_range(header: str, size: int) -> tuple[int, int]:
    """[start, end) of one `bytes=a-b` range; 416 for anything else."""
    match = _RANGE.match(header.strip())
    if match is None or match.groups() == ("", ""):
        raise ApiError(416, "bad_range", f"Range {header!r}: give one range, bytes=START-END")
    first, last = match.groups()
    if first == "":
        start, end = max(0, size - int(last)), size
    else:
        start = int(first)
        end = min(size, int(last) + 1) if last else size
    if start >= end:
        raise ApiError(416, "bad_range", f"Range {header!r} is outside the file's {size} bytes")
    return start, end


async def _require_job(hub: Hub, job_id: int) -> None:
    if await hub.store.read(visible_job, job_id) is None:
        raise ApiError(404, "job_not_found", f"job {job_id} does not exist")
