"""The records the test plan queries hand out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from testfleet.protocol.plan_api import InstanceState, TaskState
from testfleet.store.records import Record


@dataclass(frozen=True, slots=True)
class PlanRecord(Record):
    """A plan the hub knows, with the size of its current source."""

    name: str
    manifest: dict[str, Any]
    source_hash: str
    imported_at: datetime
    requestor: str
    size: int


@dataclass(frozen=True, slots=True)
class BuildRecord(Record):
    """A finished build: what it was made of."""

    artifact: str
    plan: str
    builder: str
    source_hash: str
    sdk_hash: str | None
    build_config: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PlanTaskRecord(Record):
    """A build or run task."""

    states: ClassVar[dict[str, type[StrEnum]]] = {"state": TaskState}

    id: str
    type: str
    plan: str
    case: str
    runner: str
    builder: str
    state: TaskState
    history: list[dict[str, Any]]
    composition: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    requestor: str
    server_id: str
    artifact: str | None
    job_id: int | None
    created_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class InstanceRecord(Record):
    """One instance of a run."""

    states: ClassVar[dict[str, type[StrEnum]]] = {"state": InstanceState}

    run_id: str
    seq: int
    group_id: str
    group_seq: int
    agent: str | None
    state: InstanceState
    exit_code: int | None
    error: str | None
    started_at: datetime | None
    ended_at: datetime | None
