"""Version constants shared by the hub and every client."""

from __future__ import annotations

API_VERSION = 1
"""The HTTP API version this code speaks (`GET /api/v1/version`)."""

WIRE_VERSION = 1
"""The version of the WebSocket protocol between the hub and connected processes."""

API_VERSION_HEADER = "X-Testfleet-Api-Version"
SERVER_ID_HEADER = "X-Testfleet-Server-Id"
REQUESTOR_HEADER = "X-Testfleet-Requestor"
