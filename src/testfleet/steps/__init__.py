"""Step plugins: the hub validates their parameters, the agent runs them."""

from testfleet.steps.base import StepContext, StepParams, StepPlugin, StepResult
from testfleet.steps.registry import ENTRY_POINT_GROUP, UnknownPlugin, get_plugin, plugins

__all__ = [
    "ENTRY_POINT_GROUP",
    "StepContext",
    "StepParams",
    "StepPlugin",
    "StepResult",
    "UnknownPlugin",
    "get_plugin",
    "plugins",
]
