"""`GET /healthz` is answered before the middleware (load balancers probe it often), the same
as its documented route: status, server id, and the server-id header every answer carries."""

from __future__ import annotations

from pathlib import Path

import pytest

from testfleet.protocol.version import API_VERSION_HEADER, SERVER_ID_HEADER
from tests.support.inproc import running_hub

pytestmark = pytest.mark.anyio


async def test_healthz_answers_like_the_documented_route(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        first = await hub.api.get("/healthz")
        again = await hub.api.get("/healthz")
        other_version = await hub.api.get("/healthz", headers={API_VERSION_HEADER: "999"})
        version = await hub.api.get("/api/v1/version")  # through the whole stack
        document = (await hub.api.get("/openapi.json")).json()

    server_id = version.json()["server_id"]
    for answer in (first, again, other_version):  # a liveness probe ignores API versions
        assert answer.status_code == 200
        assert answer.json() == {"status": "ok", "server_id": server_id}
        assert answer.headers[SERVER_ID_HEADER] == server_id
        assert answer.headers["content-type"] == "application/json"
    assert "/healthz" in document["paths"]
