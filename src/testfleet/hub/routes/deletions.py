"""Deleting a job: hidden at once, removed with its events and artifacts in the background."""

from __future__ import annotations

from fastapi import APIRouter

from testfleet.hub.errors import ApiError
from testfleet.hub.routes.deps import HubDep, Operator, RowId
from testfleet.protocol.results import Acknowledgement
from testfleet.protocol.wire import utcnow
from testfleet.store.deletions import DeleteOutcome, request_deletion

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


@router.delete(
    "/{job_id}",
    status_code=202,
    response_model=Acknowledgement,
    summary="Delete a finished job with its events, test cases and artifacts (in the background)",
)
async def delete_job(job_id: RowId, hub: HubDep, who: Operator) -> Acknowledgement:
    outcome, state = await hub.store.write(request_deletion, job_id, who.name, utcnow())
    if outcome == DeleteOutcome.NOT_FOUND:
        raise ApiError(404, "job_not_found", f"job {job_id} does not exist")
    if outcome == DeleteOutcome.UNFINISHED:
        raise ApiError(
            409, "job_not_finished", f"job {job_id} is {state}; stop it before deleting it"
        )
    hub.maintenance.wake.set()
    hub.signals.lab_changed()
    return Acknowledgement(
        server_id=hub.server_id,
        message=f"job {job_id} deleted; its data goes in the background",
        data={"job_id": job_id},
    )
