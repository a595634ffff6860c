"""Version, health, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from testfleet import __version__
from testfleet.hub.auth import READ, authenticate
from testfleet.hub.routes.deps import HubDep
from testfleet.protocol.api import VersionInfo
from testfleet.protocol.version import API_VERSION

router = APIRouter(tags=["operations"])


@router.get("/api/v1/version", response_model=VersionInfo, summary="The API version")
async def version(hub: HubDep) -> VersionInfo:
    return VersionInfo(version=API_VERSION, server_id=hub.server_id, package_version=__version__)


@router.get("/healthz", summary="The process is up")
async def healthz(hub: HubDep) -> dict[str, str]:
    return {"status": "ok", "server_id": hub.server_id}


@router.get("/readyz", summary="The hub can serve: store reachable, services running")
async def readyz(hub: HubDep) -> JSONResponse:
    try:
        await hub.store.ping()
    except Exception as error:
        return JSONResponse({"status": "unavailable", "reason": f"store: {error}"}, status_code=503)
    health = hub.store.write_health
    if not health.writing:
        reason = f"the store cannot write: {health.last_error}"
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    if not hub.ready:
        return JSONResponse({"status": "starting"}, status_code=503)
    return JSONResponse({"status": "ready", "server_id": hub.server_id})


@router.get(
    "/metrics",
    summary="Prometheus metrics (with auth: a reader's token, unless the hub runs with "
    "--metrics-public)",
)
async def metrics(request: Request, hub: HubDep) -> Response:
    if hub.config.auth_enabled and not hub.config.metrics_public:
        await authenticate(request, READ)
    hub.metrics.running_jobs.set(len(hub.runners))
    return Response(generate_latest(hub.metrics.registry), media_type=CONTENT_TYPE_LATEST)
