"""The coverage records the store hands out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class BuildRecord:
    """One build of an application."""

    id: int
    app: str
    version: str
    parent: str | None
    checksum: str
    classes: int
    functions: int
    probes: int
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> BuildRecord:
        """The record of a `coverage_builds` row."""
        return cls(**row._mapping)


@dataclass(frozen=True, slots=True)
class ClassRecord:
    """A module of a build: probe i is line `lines[i]`, then probe len(lines) + j is branch
    arc `arcs[j]`."""

    idx: int
    class_id: int
    name: str
    lines: list[int]
    arcs: list[tuple[int, int]]

    @property
    def probes(self) -> int:
        """How many probes it has."""
        return len(self.lines) + len(self.arcs)

    @classmethod
    def from_row(cls, row: Any) -> ClassRecord:
        """The record of a `coverage_classes` row (without its source)."""
        arcs = [(int(a), int(b)) for a, b in row.arcs]
        return cls(row.idx, row.class_id, row.name, list(row.lines), arcs)


@dataclass(frozen=True, slots=True)
class FunctionRecord:
    """A function of a build's module: probes `first .. first + count - 1` of its class."""

    class_idx: int
    name: str
    line: int
    end_line: int
    first: int
    count: int
    checksum: str

    @classmethod
    def from_row(cls, row: Any) -> FunctionRecord:
        """The record of a `coverage_functions` row."""
        values = row._mapping
        return cls(
            values["class_idx"],
            values["name"],
            values["line"],
            values["end_line"],
            values["first"],
            values["count"],
            values["checksum"],
        )

    def mask(self) -> int:
        """Its probes as a bit mask over its class's probes."""
        return ((1 << self.count) - 1) << self.first


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A coverage session."""

    id: str
    build_id: int
    app: str
    version: str
    test_type: str
    test_name: str | None
    is_realtime: bool
    is_global: bool
    state: str
    agents: list[str]
    scope: str
    started_at: datetime
    finished_at: datetime | None
    started_by: str
    job_id: int | None
    covered: int
    total: int

    @property
    def open(self) -> bool:
        """Active or stopping: probes may still send parts."""
        return self.state in ("active", "stopping")

    @classmethod
    def from_row(cls, row: Any) -> SessionRecord:
        """The record of a session row joined with its build's version."""
        values = dict(row._mapping)
        values["agents"] = list(values["agents"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class ProbeRecord:
    """A connected probe."""

    agent_id: str
    app: str
    build_id: int
    version: str
    instance_id: str
    hub: str
    connected_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> ProbeRecord:
        """The record of a probe row joined with its build's version."""
        return cls(**row._mapping)
