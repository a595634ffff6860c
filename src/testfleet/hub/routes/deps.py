"""What routes depend on: the hub serving the request, and who is asking."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request

from testfleet.hub.auth import ADMIN, OPERATE, READ, Principal, require
from testfleet.hub.runtime import Hub
from testfleet.protocol.types import INT64_MAX


async def get_hub(request: Request) -> Hub:
    """The hub serving this request."""
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(get_hub)]
SELF_BOUNDED_BODY = 2**62
"""`max_body_size` of a route that bounds its body itself while it streams in (uploads,
plan archives): the hub-wide limit does not apply to it."""
Reader = Annotated[Principal, Depends(require(READ))]
Operator = Annotated[Principal, Depends(require(OPERATE))]
Admin = Annotated[Principal, Depends(require(ADMIN))]

RowId = Annotated[int, Path(ge=1, le=INT64_MAX, description="A row's id (64-bit).")]
"""Any id in a path: bounded to what the store holds, so a larger one is a 422."""
JobId = Annotated[int, Path(ge=1, le=INT64_MAX, description="A job's id.")]
TokenId = Annotated[int, Path(ge=1, le=INT64_MAX, description="A token's id.")]
EventCursor = Annotated[int, Query(ge=0, le=INT64_MAX, description="Only events with a larger id.")]
TaskFilter = Annotated[int | None, Query(ge=1, le=INT64_MAX, description="Only this task.")]
StepFilter = Annotated[int | None, Query(ge=0, le=10_000, description="Only this step (index).")]
