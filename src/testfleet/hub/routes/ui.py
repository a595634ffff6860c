"""The web UI at `/ui/` (`/` leads there): the page for every UI path, and its files."""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from testfleet.hub.web import SECURITY_HEADERS, Asset, UiFiles

router = APIRouter(include_in_schema=False)
IMMUTABLE = "public, max-age=31536000, immutable"


@cache
def ui_files() -> UiFiles:
    """The UI's files, read on first use."""
    return UiFiles()


def _send(request: Request, asset: Asset, cache_control: str) -> Response:
    headers = {"ETag": asset.etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=asset.media_type, headers=headers)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui")
async def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui/static/{version}/{name:path}")
async def ui_asset(version: str, name: str, request: Request) -> Response:
    files = ui_files()
    asset = files.asset(name)
    if asset is None:
        return Response(f"no such file: {name}\n", status_code=404, media_type="text/plain")
    # An old page asking for another version gets today's file, never cached for long.
    return _send(request, asset, IMMUTABLE if version == files.version else "no-cache")


@router.get("/ui/{page:path}")
async def ui_page(page: str, request: Request) -> Response:
    response = _send(request, ui_files().index, "no-cache")
    response.headers.update(SECURITY_HEADERS)
    return response
