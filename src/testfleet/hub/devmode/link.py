"""Developer commands on their way to agents: on the socket of an agent connected here, or
through the hub it is connected to (several hubs on PostgreSQL: the command is kept in the
store and that hub is notified with the row's id; it sends the command and deletes the row)."""

from __future__ import annotations

import logging

from pydantic import BaseModel

from testfleet.hub.agents.connections import Connections
from testfleet.hub.relay import Relay
from testfleet.protocol.wire import HUB_MESSAGES, utcnow
from testfleet.store import devmode as devmode_store
from testfleet.store.addresses import agent_of_command
from testfleet.store.db import Store

_log = logging.getLogger(__name__)
KIND = "dev_command"


class DevLink:
    """Sends developer commands to agents, here or through their hub."""

    def __init__(self, store: Store, connections: Connections, relay: Relay) -> None:
        self._store = store
        self._connections = connections
        self._relay = relay
        relay.handle(KIND, self._notified)

    def is_local(self, agent_id: int) -> bool:
        """True if the agent is connected to this hub."""
        return agent_id in self._connections

    async def send(self, job_id: int, agent_id: int, message: BaseModel) -> bool:
        """Send `message` to the agent; False if it is connected to no hub we can reach."""
        if self._connections.send(agent_id, message):
            return True
        if not self._relay.enabled:
            return False
        command_id = await self._store.write(
            devmode_store.add_command,
            job_id,
            agent_id,
            message.model_dump(mode="json"),
            utcnow(),
        )
        await self._relay.publish(KIND, command_id, to=agent_of_command)
        return True

    async def _notified(self, command_id: int) -> bool:
        agent_id = await self._store.read(devmode_store.command_agent, command_id)
        if agent_id is None or agent_id not in self._connections:
            return False  # another hub's agent (it moved, or the command came to every hub)
        taken = await self._store.write(devmode_store.take_command, command_id)
        if taken is not None:
            agent_id, message = taken
            self._connections.send(agent_id, HUB_MESSAGES.validate_python(message))
        return True
