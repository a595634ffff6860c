"""Find step plugins (entry point group `testfleet.steps`) and validate their parameters."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points

from pydantic import ValidationError

from testfleet.steps.base import StepParams, StepPlugin
from testfleet.steps.builtin import CmdStep, EchoStep, SleepStep
from testfleet.steps.plan.step import PlanStep

ENTRY_POINT_GROUP = "testfleet.steps"
_BUILTIN: dict[str, type[StepPlugin]] = {p.name: p for p in (CmdStep, EchoStep, SleepStep)}
_INTERNAL: dict[str, type[StepPlugin]] = {PlanStep.name: PlanStep}
"""Steps the hub itself sends (a test plan run's `plan`): agents run them, descriptors
submitted by users cannot name them."""
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParamError:
    """One invalid parameter: its path below `params` and the problem."""

    path: tuple[str | int, ...]
    message: str


class UnknownPlugin(LookupError):
    """No plugin of that name; `known` lists the ones there are."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown step plugin {name!r}; known plugins: {', '.join(known)}")
        self.name = name
        self.known = known


@cache
def plugins() -> dict[str, type[StepPlugin]]:
    """All plugins by name: the built-ins, then those installed under the entry point group."""
    found = dict(_BUILTIN)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in _BUILTIN:
            continue
        try:
            plugin = entry.load()
        except Exception:  # a broken third-party package must not take the hub down
            _log.exception("cannot load step plugin %r from %s", entry.name, entry.value)
            continue
        if isinstance(plugin, type) and issubclass(plugin, StepPlugin):
            found[entry.name] = plugin
        else:
            _log.error("step plugin %r (%s) is not a StepPlugin subclass", entry.name, entry.value)
    return found


def get_plugin(name: str, *, internal: bool = False) -> type[StepPlugin]:
    """The plugin class called `name` (with `internal`, the hub's own steps too), or
    UnknownPlugin."""
    if internal and name in _INTERNAL:
        return _INTERNAL[name]
    try:
        return plugins()[name]
    except KeyError:
        raise UnknownPlugin(name, sorted(plugins())) from None


def validate_params(name: str, params: dict[str, object]) -> StepParams | list[ParamError]:
    """Validated params for plugin `name`, or the list of what is wrong with them."""
    plugin = get_plugin(name)
    try:
        return plugin.Params.model_validate(params)
    except ValidationError as error:
        return [ParamError(tuple(e["loc"]), e["msg"]) for e in error.errors()]
