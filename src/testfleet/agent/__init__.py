"""The agent: a long-running process on a lab machine that runs what the hub gives it.

Imports `testfleet.protocol` and `testfleet.steps` only: it installs without the hub's
dependencies.
"""

from testfleet.agent.client import Agent, AgentRefused
from testfleet.agent.config import AgentConfig

__all__ = ["Agent", "AgentConfig", "AgentRefused"]
