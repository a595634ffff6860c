"""A composition: which plan and case to run, as which groups of instances, built and run how.

The shape is Testground's (`metadata`, `global`, `groups`); JSON or TOML. testfleet adds
`run_config` keys of its own (see `RunConfig`) and per-group `run_config` overrides.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from testfleet.protocol.durations import Duration

GROUP_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Metadata(_Strict):
    """Who wrote the composition and what it is called."""

    name: str = Field("", max_length=200)
    author: str = Field("", max_length=200)


class GroupRun(_Strict):
    """How a group's instances run: their test parameters (strings, or typed values)."""

    test_params: dict[str, Any] = Field(default_factory=dict)
    artifact: str = ""


class Resources(_Strict):
    """What each instance of a group needs: memory ("256Mi", "1Gi") and cpu ("0.5", "500m")."""

    memory: str = ""
    cpu: str = ""


class Instances(_Strict):
    """How many instances a group has: a `count`, or a `percentage` of total_instances as a
    fraction (0.5 is half)."""

    count: int = Field(0, ge=0, le=10_000)
    percentage: float = Field(0.0, ge=0.0, le=1.0)


class Group(_Strict):
    """A group of instances running the same case with the same parameters."""

    id: str = Field(pattern=GROUP_ID)
    resources: Resources = Field(default_factory=Resources)
    instances: Instances = Field(default_factory=Instances)
    build: dict[str, Any] = Field(default_factory=dict)
    build_config: dict[str, Any] = Field(default_factory=dict)
    run: GroupRun = Field(default_factory=GroupRun)
    run_config: dict[str, Any] = Field(default_factory=dict)


class Global(_Strict):
    """What the whole composition runs."""

    plan: str = Field(min_length=1, max_length=100)
    case: str = Field(min_length=1, max_length=100)
    total_instances: int = Field(0, ge=0, le=10_000)
    builder: str = ""
    build_config: dict[str, Any] = Field(default_factory=dict)
    runner: str = ""
    run_config: dict[str, Any] = Field(default_factory=dict)
    run: GroupRun = Field(default_factory=GroupRun)


class Composition(_Strict):
    """A plan run's description."""

    metadata: Metadata = Field(default_factory=Metadata)
    global_: Global = Field(alias="global")
    groups: list[Group] = Field(min_length=1, max_length=1000)


class RunConfig(_Strict):
    """The `run_config` of testfleet's runners (global, overridden per group where noted)."""

    timeout: Duration = Field(
        600.0, gt=0, le=7 * 86400, description="An instance still running then is a failure."
    )
    placement_timeout: Duration = Field(
        60.0, gt=0, le=86400, description="How long to wait for the chosen agents' slots."
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="cluster:agents: only agents with these labels."
    )
    agent: str | None = Field(
        None, description="local:exec: the agent to run on [default: the hub's local agent]."
    )
