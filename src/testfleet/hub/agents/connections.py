"""The agents connected to this hub: their sockets and what is queued for them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from testfleet.hub.agents.inbox import Inbox, RefusalBudget
from testfleet.hub.metrics import HubMetrics


class AgentSocket(Protocol):
    """What the hub needs of an agent's WebSocket (Starlette's, or an in-process one)."""

    async def accept(self) -> None:
        """Complete the handshake."""

    async def receive(self) -> Mapping[str, Any]:
        """The next ASGI message: `websocket.receive` with `text` or `bytes`, or
        `websocket.disconnect`."""

    async def send_text(self, data: str) -> None:
        """Send one text frame."""

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection, with a reason the agent can log."""


class Outbox:
    """Texts queued for one agent, sent in order by its connection's one writer.

    A list and one waiter instead of an `asyncio.Queue` (three deques, about 2.3 KB, for
    each of thousands of mostly idle connections)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[str] = []
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def put(self, text: str) -> None:
        """Queue a text; wakes the writer."""
        self._items.append(text)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def take(self) -> list[str]:
        """Everything queued, oldest first (at least one text); waits while it is empty."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        taken, self._items = self._items, []
        return taken


@dataclass(eq=False)
class AgentConnection:
    """One live WebSocket of one agent on this hub."""

    agent_id: int
    name: str
    instance_id: str
    socket: AgentSocket
    token_id: int | None = None
    """The credential it connected with (None when the hub runs without auth)."""
    heartbeat: float = 1.0
    """How often it was told to heartbeat (seconds)."""
    timeout: float = 5.0
    """Seconds of silence after which it is lost."""
    last_seen: float = field(default_factory=time.monotonic)
    outbox: Outbox = field(default_factory=Outbox)
    inbox: Inbox = field(default_factory=Inbox)
    refusals: RefusalBudget = field(default_factory=RefusalBudget)
    closed: bool = False
    replaced: bool = False
    """A newer connection of the same agent took its place."""
    last_seq: int = 0
    last_seq_read: bool = False  # read from the store with the first events (it may have moved)

    def send(self, message: BaseModel) -> None:
        """Queue a message for the agent (sent in order by the connection's writer)."""
        if not self.closed:
            self.outbox.put(message.model_dump_json())

    async def close(self, code: int, reason: str | None = None) -> None:
        """Close the socket; nothing more is sent."""
        self.closed = True
        with contextlib.suppress(Exception):
            await self.socket.close(code=code, reason=reason)


HEARTBEATS_PER_SECOND = 500
"""How many heartbeats a second a large fleet sends its hub at most."""
MAX_HEARTBEAT = 30.0
"""The longest heartbeat interval (a silent agent is judged lost after 3 of them and 1 s)."""


class Connections:
    """The connected agents by id, and since when the ones that dropped are gone."""

    def __init__(self, metrics: HubMetrics, heartbeat: float, timeout: float) -> None:
        self._metrics = metrics
        self._heartbeat = heartbeat
        self._timeout = timeout
        self._by_id: dict[int, AgentConnection] = {}
        self._by_name: dict[str, AgentConnection] = {}
        self.disconnected_at: dict[int, float] = {}
        """Agents whose socket closed (monotonic time) and that have not come back."""
        self._timeouts: dict[int, float] = {}

    def heartbeat_interval(self) -> float:
        """How often a newly registered agent should heartbeat: the configured interval, or
        longer in a large fleet (HEARTBEATS_PER_SECOND from the whole fleet at most, capped
        at MAX_HEARTBEAT s), so heartbeats stay a small share of the hub's work. Agents that
        registered when the fleet was smaller are told the new interval (liveness)."""
        return max(self._heartbeat, min(MAX_HEARTBEAT, len(self._by_id) / HEARTBEATS_PER_SECOND))

    def timeout_for(self, interval: float) -> float:
        """How long an agent heartbeating every `interval` seconds may be silent."""
        return max(self._timeout, 3 * interval + 1)

    def timeout_of(self, agent_id: int) -> float:
        """The silence allowed to an agent whose socket closed."""
        return self._timeouts.get(agent_id, self._timeout)

    def forget_timeout(self, agent_id: int) -> float:
        """Done judging an agent whose socket closed: its allowed silence, forgotten."""
        return self._timeouts.pop(agent_id, self._timeout)

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._by_id

    def __iter__(self) -> Iterator[AgentConnection]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def ids(self) -> list[int]:
        """The ids of the agents connected here."""
        return list(self._by_id)

    def get(self, agent_id: int) -> AgentConnection | None:
        """The agent's connection, if it is connected here."""
        return self._by_id.get(agent_id)

    def named(self, name: str) -> AgentConnection | None:
        """The connection of the agent called `name`, if it is connected here."""
        return self._by_name.get(name)

    def add(self, connection: AgentConnection) -> None:
        """An agent registered on this hub (a previous connection of it is replaced)."""
        self._by_id[connection.agent_id] = connection
        self._by_name[connection.name] = connection
        self.disconnected_at.pop(connection.agent_id, None)
        self._timeouts.pop(connection.agent_id, None)
        self._metrics.agents_connected.set(len(self._by_id))

    def drop(self, connection: AgentConnection, *, lost: bool = False) -> None:
        """The connection ended; unless the agent is `lost` already, note when, so that it is
        declared lost if it does not come back in time."""
        connection.closed = True
        if self._by_name.get(connection.name) is connection:
            del self._by_name[connection.name]
        if self._by_id.get(connection.agent_id) is connection:
            del self._by_id[connection.agent_id]
            if not lost:
                self.disconnected_at[connection.agent_id] = time.monotonic()
                self._timeouts[connection.agent_id] = connection.timeout
        self._metrics.agents_connected.set(len(self._by_id))

    def send(self, agent_id: int, message: BaseModel) -> bool:
        """Queue a message for an agent connected here; False if it is not."""
        connection = self._by_id.get(agent_id)
        if connection is None or connection.closed:
            return False
        connection.send(message)
        return True

    def of_token(self, token_id: int) -> list[AgentConnection]:
        """The connections made with a credential."""
        return [c for c in self._by_id.values() if c.token_id == token_id]

    async def close_all(self) -> None:
        """Close every connection (on shutdown): agents reconnect to the next hub."""
        for connection in list(self._by_id.values()):
            await connection.close(1012, "the hub is shutting down")
