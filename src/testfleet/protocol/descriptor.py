"""The job descriptor: what a user submits to start a job (JSON or YAML)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from testfleet.protocol.artifacts import MAX_GLOBS, glob_problem
from testfleet.protocol.durations import Duration
from testfleet.protocol.types import Text

_NAME = r"^[A-Za-z0-9][A-Za-z0-9 ._:/@+-]*$"
_PARAM = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
Scalar = Annotated[str, Field(max_length=1000)] | bool | int | float
_THRESHOLD = re.compile(r"^\s*(>=|<=|==|=|>|<)\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DeviceRequest(_Strict):
    """Which devices a test needs: how many, and what they must offer."""

    count: int = Field(1, ge=1, le=1000, description="How many devices the test runs on at once.")
    capabilities: dict[str, Any] = Field(
        default_factory=dict,
        description="Capabilities each device must have (W3C names: platformName, browserName).",
    )
    labels: dict[Text, Text] = Field(
        default_factory=dict, description="Labels each device (or its agent) must carry."
    )
    names: list[Text] = Field(
        default_factory=list,
        max_length=1000,
        description="Only these devices, by name or id (ConTest's TargetList maps here).",
    )
    kind: Text | None = Field(
        None, max_length=50, description="Device kind, e.g. 'host' for an agent's host slots."
    )
    timeout: Duration = Field(
        300.0, gt=0, description="How long to wait for free devices before the test fails."
    )

    @model_validator(mode="after")
    def _names_cover_count(self) -> DeviceRequest:
        if self.names and len(self.names) < self.count:
            raise ValueError(
                f"names lists {len(self.names)} device(s) but count asks for {self.count}"
            )
        return self


def _relative_glob(pattern: str) -> str:
    problem = glob_problem(pattern)
    if problem is not None:
        raise ValueError(problem)
    return pattern


ArtifactGlob = Annotated[str, AfterValidator(_relative_glob)]
"""A glob of artifact files, relative to the task's working directory."""


class StepCoverage(_Strict):
    """A coverage session the hub opens on an application's probes around a step."""

    app: str = Field(min_length=1, max_length=200, description="The application under test.")
    build: str | None = Field(None, max_length=200, description="Its build [default: newest].")
    test_type: str = Field("AUTO", min_length=1, max_length=50)
    test_name: str | None = Field(
        None, max_length=1000, description="The test name [default: job/test/step]."
    )
    realtime: bool = False


class StepDescriptor(_Strict):
    """One step of a test: a plugin and its parameters."""

    name: Text = Field(min_length=1, max_length=200)
    plugin: Text = Field(
        min_length=1, max_length=100, description="A step plugin: cmd, echo, sleep..."
    )
    params: dict[str, Any] = Field(default_factory=dict)
    timeout: Duration | None = Field(None, gt=0, description="Fail the step after this long.")
    artifacts: list[ArtifactGlob] = Field(
        default_factory=list,
        max_length=MAX_GLOBS,
        description="Globs of files to keep when the step ends, relative to the task's "
        "working directory ('reports/*.xml', 'screenshots/**').",
    )
    coverage: StepCoverage | None = Field(
        None, description="Record coverage of an application while this step runs."
    )


class RetryPolicy(_Strict):
    """How often a failed test is tried again, and how long to wait in between."""

    count: int = Field(0, ge=0, le=100)
    interval: Duration = 0.0


class TestDescriptor(_Strict):
    """One test: acquire devices, then run the steps in order on each of them in parallel."""

    __test__ = False  # not a pytest class

    name: Text = Field(min_length=1, max_length=200)
    devices: DeviceRequest = Field(default_factory=DeviceRequest)
    steps: list[StepDescriptor] = Field(min_length=1, max_length=1000)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    matrix: dict[Annotated[str, Field(pattern=_PARAM)], list[Scalar]] = Field(
        default_factory=dict,
        max_length=10,
        description="One test per combination of these values, named after them; steps "
        "refer to a value as ${{ matrix.NAME }}.",
    )

    @field_validator("matrix")
    @classmethod
    def _matrix_axes(cls, matrix: dict[str, list[Scalar]]) -> dict[str, list[Scalar]]:
        for axis, values in matrix.items():
            if not values or len(values) > 100:
                raise ValueError(f"matrix axis {axis!r} needs 1-100 values")
        return matrix

    @field_validator("steps")
    @classmethod
    def _unique_step_names(cls, steps: list[StepDescriptor]) -> list[StepDescriptor]:
        seen: set[str] = set()
        for step in steps:
            if step.name in seen:
                raise ValueError(f"step name {step.name!r} is used twice in this test")
            seen.add(step.name)
        return steps


class ReporterSpec(_Strict):
    """A reporter by name with its parameters."""

    name: Text = Field(min_length=1, max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)


class Reporting(_Strict):
    """Reporters run after each run and once at the end of the job."""

    run_reporters: list[ReporterSpec] = Field(default_factory=list)
    final_reporters: list[ReporterSpec] = Field(default_factory=list)


class JobDescriptor(_Strict):
    """What to run: `runs` times, each test one after another."""

    name: str = Field(min_length=1, max_length=200, pattern=_NAME)
    tags: list[str] = Field(default_factory=list, max_length=50)
    runs: int = Field(1, ge=0, le=1_000_000, description="0 repeats until the job is stopped.")
    run_interval: Duration = 0.0
    tests: list[TestDescriptor] = Field(min_length=1, max_length=1000)
    reporting: Reporting = Field(default_factory=Reporting)
    params: dict[Annotated[str, Field(pattern=_PARAM)], Scalar | None] = Field(
        default_factory=dict,
        max_length=100,
        description="Parameters with their defaults (null: required), overridden at start; "
        "steps refer to them as ${{ params.NAME }}.",
    )

    @field_validator("tags")
    @classmethod
    def _valid_tags(cls, tags: list[str]) -> list[str]:
        for tag in tags:
            if not tag or len(tag) > 100 or not re.match(_NAME, tag):
                raise ValueError(f"tag {tag!r} must be 1-100 letters, digits, or . _ : / @ + -")
        return sorted(set(tags))


def parse_threshold(expression: str) -> tuple[str, float, bool]:
    """Split a success expression such as ">80%" or ">=5" into (operator, number, is_percent)."""
    match = _THRESHOLD.match(expression)
    if not match:
        raise ValueError(
            f"{expression!r} is not a success expression: use an operator and a number, "
            "with % for a share of targets (e.g. '>80%', '>=95%', '=100%', '>=3')"
        )
    operator, number, percent = match.groups()
    value = float(number)
    if percent and value > 100:
        raise ValueError(f"{expression!r}: a percentage cannot exceed 100")
    return ("==" if operator == "=" else operator), value, bool(percent)
