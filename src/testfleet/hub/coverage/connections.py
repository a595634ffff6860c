"""The probes connected to this hub, each with its socket and its build's class layout."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel

from testfleet.hub.coverage.parts import Layout
from testfleet.hub.metrics import HubMetrics
from testfleet.store.coverage_records import BuildRecord


class ProbeSocket(Protocol):
    """What the hub needs of a probe's WebSocket (Starlette's, or an in-process one)."""

    async def accept(self) -> None:
        """Complete the handshake."""

    async def receive_text(self) -> str:
        """The next text frame."""

    async def send_text(self, data: str) -> None:
        """Send one text frame."""

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection."""


@dataclass(eq=False)
class ProbeConnection:
    """One connected probe."""

    agent_id: str
    instance_id: str
    build: BuildRecord
    layout: Layout
    socket: ProbeSocket
    outbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    last_seen: float = field(default_factory=time.monotonic)

    @property
    def app(self) -> str:
        """The probe's application."""
        return self.build.app

    def send(self, message: BaseModel) -> None:
        """Queue a message for the probe."""
        self.outbox.put_nowait(message.model_dump_json())

    async def close(self, code: int = 1000) -> None:
        """Close the socket (the connection's tasks then end)."""
        with contextlib.suppress(Exception):
            await self.socket.close(code=code)


class ProbeConnections:
    """Connected probes by id."""

    def __init__(self, metrics: HubMetrics) -> None:
        self._by_id: dict[str, ProbeConnection] = {}
        self._metrics = metrics

    def add(self, connection: ProbeConnection) -> None:
        """A probe connected."""
        self._by_id[connection.agent_id] = connection
        self._metrics.coverage_probes.set(len(self._by_id))

    def drop(self, connection: ProbeConnection) -> bool:
        """A probe's connection closed; False if a newer one has replaced it."""
        if self._by_id.get(connection.agent_id) is connection:
            del self._by_id[connection.agent_id]
            self._metrics.coverage_probes.set(len(self._by_id))
            return True
        return False

    def get(self, agent_id: str) -> ProbeConnection | None:
        """The connection of probe `agent_id`, if it is connected here."""
        return self._by_id.get(agent_id)

    def of_build(self, build_id: int) -> list[ProbeConnection]:
        """Connected probes of one build."""
        return [c for c in self._by_id.values() if c.build.id == build_id]

    async def close_all(self) -> None:
        """Close every probe connection (the hub is stopping)."""
        await asyncio.gather(*(c.close(1001) for c in list(self._by_id.values())))

    def __len__(self) -> int:
        return len(self._by_id)
