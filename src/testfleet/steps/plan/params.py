"""What the hub tells an agent about its share of a run (the `plan` step's parameters)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from testfleet.steps.base import StepParams


class InstanceSpec(BaseModel):
    """One instance's identity: its seq in the run and in its group (both 1-based)."""

    model_config = ConfigDict(extra="forbid")

    seq: int = Field(ge=1)
    group: str
    group_seq: int = Field(ge=1)


class GroupSpec(BaseModel):
    """A group's size and its instances' typed parameters."""

    model_config = ConfigDict(extra="forbid")

    id: str
    count: int = Field(ge=1)
    params: dict[str, Any] = Field(default_factory=dict)


class PlanStepParams(StepParams):
    """An agent's share of run `run_id`: the instances in `shares[agent name]`."""

    run_id: str
    plan: str
    case: str
    source_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    sdk_hash: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    entry: str = "main.py"
    requirements: str = "requirements.txt"
    total: int = Field(ge=1)
    groups: list[GroupSpec]
    shares: dict[str, list[InstanceSpec]]
    timeout: float = Field(gt=0, description="Seconds an instance may run before it fails.")
    start_time: str
