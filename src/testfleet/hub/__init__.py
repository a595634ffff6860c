"""The hub: one ASGI application that owns the store, schedules jobs and serves the API.

Imports `testfleet.protocol`, `testfleet.store` and `testfleet.steps` (to check step params).
"""

from testfleet.hub.app import create_app
from testfleet.hub.config import HubConfig

__all__ = ["HubConfig", "create_app"]
