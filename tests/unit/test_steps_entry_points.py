"""Third-party step plugins come from the entry point group `testfleet.steps`."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from typing import Any, ClassVar

import pytest

from testfleet.hub.descriptors import check_descriptor
from testfleet.hub.errors import ApiError
from testfleet.steps import registry
from testfleet.steps.base import StepContext, StepParams, StepPlugin, StepResult


class FlashParams(StepParams):
    image: str
    retries: int = 0


class FlashStep(StepPlugin):
    name: ClassVar[str] = "flash"
    Params = FlashParams

    async def run(self, ctx: StepContext, params: Any) -> StepResult:
        return StepResult(passed=True)


@pytest.fixture
def installed_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Pretend a package installed `flash`, a broken plugin and a non-plugin."""
    module = types.ModuleType("tf_fake_plugins")
    module.FlashStep = FlashStep  # type: ignore[attr-defined]
    module.NotAPlugin = object  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tf_fake_plugins", module)
    found = [
        EntryPoint("flash", "tf_fake_plugins:FlashStep", registry.ENTRY_POINT_GROUP),
        EntryPoint("broken", "tf_no_such_module:Step", registry.ENTRY_POINT_GROUP),
        EntryPoint("odd", "tf_fake_plugins:NotAPlugin", registry.ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(registry, "entry_points", lambda group: found)
    registry.plugins.cache_clear()
    yield
    registry.plugins.cache_clear()


def _job(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "j",
        "tests": [{"name": "t", "steps": [{"name": "f", "plugin": "flash", "params": params}]}],
    }


def test_an_installed_plugin_is_found_and_its_params_checked(installed_plugins: None) -> None:
    assert registry.get_plugin("flash") is FlashStep
    assert {"cmd", "echo", "sleep", "flash"} == set(registry.plugins())  # broken/odd skipped
    assert check_descriptor(_job({"image": "a.img"})).tests[0].steps[0].plugin == "flash"
    with pytest.raises(ApiError) as caught:
        check_descriptor(_job({"retries": "many"}))
    locations = {e.location for e in caught.value.errors}
    assert locations == {"/tests/0/steps/0/params/image", "/tests/0/steps/0/params/retries"}


def test_without_the_package_the_plugin_is_unknown() -> None:
    registry.plugins.cache_clear()
    with pytest.raises(ApiError, match="unknown step plugin 'flash'"):
        check_descriptor(_job({"image": "a.img"}))
