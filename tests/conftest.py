"""Shared fixtures: real hubs and agents on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.processes import Agent, Hub


@dataclass
class LiveHub:
    """A running hub with one agent; `admin_token` is set when auth is on."""

    hub: Hub
    agent: Agent
    admin_token: str | None = None

    @property
    def url(self) -> str:
        """The hub's base URL."""
        return self.hub.url

    @property
    def agent_name(self) -> str:
        """The connected agent's name."""
        return self.agent.name

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client for the API (with the admin token unless another is given)."""
        token = token or self.admin_token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def live_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    """A hub (SQLite, no auth) with one agent `agent-a` of 2 host slots."""
    workdir = tmp_path_factory.mktemp("live-hub")
    hub = Hub(workdir).start()
    agent = Agent(workdir, hub.url, "agent-a", slots=2).start()
    live = LiveHub(hub, agent)
    with live.client() as client:
        agent.wait_online(client)
    yield live
    agent.stop()
    hub.stop()


@pytest.fixture(scope="module")
def auth_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    """A hub with auth on, an admin token, and one agent `agent-s` using an agent token."""
    workdir = tmp_path_factory.mktemp("auth-hub")
    hub = Hub(workdir, auth=True)
    admin = hub.create_token("root-admin", "admin")
    agent_token = hub.create_token("agent-s", "agent")
    hub.start()
    agent = Agent(workdir, hub.url, "agent-s", slots=1, token=agent_token).start()
    live = LiveHub(hub, agent, admin_token=admin)
    with live.client() as client:
        agent.wait_online(client)
    yield live
    agent.stop()
    hub.stop()


@pytest.fixture
def client(live_hub: LiveHub) -> Iterator[httpx.Client]:
    """An API client of `live_hub`."""
    with live_hub.client() as api:
        yield api
