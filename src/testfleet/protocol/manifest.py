"""A test plan's manifest (`manifest.toml`): its name, defaults, builders, runners and cases."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from testfleet.protocol.durations import parse_duration

PLAN_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
CASE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
BUILDERS = ("exec:python",)
"""The builders this hub has."""
RUNNERS = ("local:exec", "cluster:agents")
"""The runners this hub has."""
MAX_INSTANCES = 10_000

ParamType = Literal["int", "float", "bool", "string", "duration", "json"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParamSpec(_Strict):
    """A typed parameter of a test case, with its default."""

    type: ParamType = "string"
    desc: str = ""
    unit: str = ""
    default: Any = None

    @model_validator(mode="after")
    def _default_has_the_type(self) -> ParamSpec:
        if self.default is not None:
            self.default = coerce_param(self.type, self.default)
        return self


class InstanceBounds(_Strict):
    """How many instances a case runs with: at least `min`, at most `max`."""

    min: int = Field(1, ge=1, le=MAX_INSTANCES)
    max: int = Field(1, ge=1, le=MAX_INSTANCES)
    default: int | None = Field(None, ge=1, le=MAX_INSTANCES)

    @model_validator(mode="after")
    def _ordered(self) -> InstanceBounds:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        if self.default is not None and not self.min <= self.default <= self.max:
            raise ValueError(f"default ({self.default}) is outside {self.min}..{self.max}")
        return self


class TestCase(_Strict):
    """One test case of a plan."""

    __test__ = False  # not a pytest class

    name: str = Field(pattern=CASE_NAME)
    instances: InstanceBounds = Field(default_factory=InstanceBounds)
    params: dict[str, ParamSpec] = Field(default_factory=dict)


class Defaults(_Strict):
    """The builder and runner a composition gets when it names none."""

    builder: str = "exec:python"
    runner: str = "local:exec"


class PythonBuild(BaseModel):
    """`[builders."exec:python"]`: the entry point and the requirements file."""

    model_config = ConfigDict(extra="allow")

    enabled: bool = True
    entry: str = "main.py"
    requirements: str = "requirements.txt"


class Manifest(_Strict):
    """A plan's `manifest.toml`."""

    name: str = Field(pattern=PLAN_NAME)
    defaults: Defaults = Field(default_factory=Defaults)
    builders: dict[str, dict[str, Any]] = Field(default_factory=dict)
    runners: dict[str, dict[str, Any]] = Field(default_factory=dict)
    testcases: list[TestCase] = Field(min_length=1, max_length=1000)

    @field_validator("testcases")
    @classmethod
    def _unique_cases(cls, cases: list[TestCase]) -> list[TestCase]:
        seen: set[str] = set()
        for case in cases:
            if case.name in seen:
                raise ValueError(f"test case {case.name!r} is defined twice")
            seen.add(case.name)
        return cases

    @model_validator(mode="after")
    def _defaults_are_supported(self) -> Manifest:
        if self.builders and self.defaults.builder not in self.builders:
            raise ValueError(f"defaults.builder {self.defaults.builder!r} is not in [builders]")
        if self.runners and self.defaults.runner not in self.runners:
            raise ValueError(f"defaults.runner {self.defaults.runner!r} is not in [runners]")
        return self

    def case(self, name: str) -> TestCase | None:
        """The test case called `name`."""
        return next((c for c in self.testcases if c.name == name), None)

    def supports_builder(self, builder: str) -> bool:
        """True when the manifest enables `builder` (a manifest listing none allows the default)."""
        if not self.builders:
            return builder == self.defaults.builder
        config = self.builders.get(builder)
        return config is not None and config.get("enabled", True) is not False

    def supports_runner(self, runner: str) -> bool:
        """True when the manifest enables `runner` (a manifest listing none allows them all)."""
        if not self.runners:
            return True
        config = self.runners.get(runner)
        return config is not None and config.get("enabled", True) is not False

    def python_build(self) -> PythonBuild:
        """The `exec:python` builder's settings."""
        return PythonBuild.model_validate(self.builders.get("exec:python", {}))


def coerce_param(kind: str, value: Any) -> Any:
    """`value` as a parameter of type `kind`; strings are parsed (k=v params are strings).

    Raises ValueError saying what was expected.
    """
    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, bool | int | float):
            return json.dumps(value) if isinstance(value, bool) else str(value)
        raise ValueError(f"expected a string, got {type(value).__name__}")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            return value.strip().lower() in ("true", "1")
        raise ValueError(f"expected true or false, got {value!r}")
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ValueError(f"expected an integer, got {value!r}")
    if kind == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ValueError(f"expected a number, got {value!r}")
    if kind == "duration":
        return parse_duration(value)
    if kind == "json":
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as error:
                raise ValueError(f"expected JSON: {error.msg}") from None
        return value
    raise ValueError(f"unknown parameter type {kind!r}")


def format_param(value: Any) -> str:
    """A typed parameter as it goes into TEST_INSTANCE_PARAMS (k=v|k=v)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))
