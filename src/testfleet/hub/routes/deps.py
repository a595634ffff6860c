"""What routes depend on: the hub serving the request, and who is asking."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from testfleet.hub.auth import ADMIN, OPERATE, READ, Principal, require
from testfleet.hub.runtime import Hub


async def get_hub(request: Request) -> Hub:
    """The hub serving this request."""
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(get_hub)]
Reader = Annotated[Principal, Depends(require(READ))]
Operator = Annotated[Principal, Depends(require(OPERATE))]
Admin = Annotated[Principal, Depends(require(ADMIN))]
