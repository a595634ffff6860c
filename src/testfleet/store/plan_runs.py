"""A run's instances (one row per identity; an outcome is set once) and its stored outputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from testfleet.protocol.plan_api import InstanceState
from testfleet.protocol.states import AgentState, DeviceState
from testfleet.store.plan_records import InstanceRecord
from testfleet.store.tables import agents, devices, plan_instances, plan_outputs


@dataclass(frozen=True)
class PlacedInstance:
    """An instance's identity and where it runs."""

    seq: int
    group_id: str
    group_seq: int
    agent: str


@dataclass(frozen=True)
class Report:
    """What an agent says of one instance."""

    seq: int
    state: InstanceState
    exit_code: int | None = None
    error: str | None = None


def place_instances(conn: Connection, run_id: str, placed: Sequence[PlacedInstance]) -> None:
    """Create a run's instances, scheduled."""
    if placed:
        conn.execute(
            plan_instances.insert(),
            [
                {
                    "run_id": run_id,
                    "seq": p.seq,
                    "group_id": p.group_id,
                    "group_seq": p.group_seq,
                    "agent": p.agent,
                    "state": InstanceState.SCHEDULED,
                }
                for p in placed
            ],
        )


def record_reports(
    conn: Connection, run_id: str, agent: str | None, reports: Sequence[Report], now: datetime
) -> int:
    """Apply reports; an instance that has an outcome keeps it (reported twice: counted once).

    Only the agent an instance was placed on may report it (None: any). Returns how many rows
    changed.
    """
    changed = 0
    for report in reports:
        where = [
            plan_instances.c.run_id == run_id,
            plan_instances.c.seq == report.seq,
            plan_instances.c.state.in_([InstanceState.SCHEDULED, InstanceState.RUNNING]),
        ]
        if agent is not None:
            where.append(plan_instances.c.agent == agent)
        values: dict[str, object] = {"state": report.state}
        if report.state == InstanceState.RUNNING:
            values["started_at"] = now
            where.append(plan_instances.c.state == InstanceState.SCHEDULED)
        else:
            values.update(ended_at=now, exit_code=report.exit_code, error=report.error)
        changed += conn.execute(update(plan_instances).where(*where).values(**values)).rowcount
    return changed


def fail_unreported(
    conn: Connection, run_id: str, state: InstanceState, reason: str, now: datetime
) -> int:
    """Give every instance without an outcome `state` with `reason`; returns how many."""
    return conn.execute(
        update(plan_instances)
        .where(
            plan_instances.c.run_id == run_id,
            plan_instances.c.state.in_([InstanceState.SCHEDULED, InstanceState.RUNNING]),
        )
        .values(state=state, error=reason, ended_at=now)
    ).rowcount


def fail_agent_instances(
    conn: Connection, run_id: str, agent: str, reason: str, now: datetime
) -> int:
    """Fail the unfinished instances placed on `agent` (lost, or its task ended early)."""
    return conn.execute(
        update(plan_instances)
        .where(
            and_(
                plan_instances.c.run_id == run_id,
                plan_instances.c.agent == agent,
                plan_instances.c.state.in_([InstanceState.SCHEDULED, InstanceState.RUNNING]),
            )
        )
        .values(state=InstanceState.FAILURE, error=reason, ended_at=now)
    ).rowcount


def list_instances(conn: Connection, run_id: str) -> list[InstanceRecord]:
    """A run's instances in seq order."""
    rows = conn.execute(
        select(plan_instances)
        .where(plan_instances.c.run_id == run_id)
        .order_by(plan_instances.c.seq)
    )
    return [InstanceRecord.from_row(row) for row in rows]


def outcome_counts(conn: Connection, run_id: str) -> dict[str, tuple[int, int]]:
    """Per group: (instances that succeeded, instances), each identity counted once."""
    ok = func.sum(case((plan_instances.c.state == InstanceState.SUCCESS, 1), else_=0))
    rows = conn.execute(
        select(plan_instances.c.group_id, ok.label("ok"), func.count().label("total"))
        .where(plan_instances.c.run_id == run_id)
        .group_by(plan_instances.c.group_id)
    )
    return {row.group_id: (int(row.ok or 0), int(row.total)) for row in rows}


def put_output(conn: Connection, run_id: str, part: str, data: bytes, now: datetime) -> None:
    """Keep an agent's share of the outputs (sent again: replaced)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(plan_outputs).values(
        run_id=run_id, part=part, data=data, size=len(data), created_at=now
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["run_id", "part"],
            set_={"data": statement.excluded.data, "size": statement.excluded.size},
        )
    )


def get_outputs(conn: Connection, run_id: str) -> list[tuple[str, bytes]]:
    """Every stored share of a run's outputs, by part."""
    rows = conn.execute(
        select(plan_outputs.c.part, plan_outputs.c.data)
        .where(plan_outputs.c.run_id == run_id)
        .order_by(plan_outputs.c.part)
    )
    return [(row.part, row.data) for row in rows]


@dataclass(frozen=True)
class HostSlot:
    """A host slot of an online agent: where a run's share can be placed."""

    agent: str
    device_id: str
    free: bool
    labels: dict[str, str]
    capabilities: dict[str, object]


def online_host_slots(conn: Connection) -> list[HostSlot]:
    """The host slots of online agents, with their agent's labels."""
    rows = conn.execute(
        select(
            agents.c.name.label("agent"),
            agents.c.labels.label("agent_labels"),
            devices.c.id,
            devices.c.state,
            devices.c.labels,
            devices.c.capabilities,
        )
        .join(agents, agents.c.id == devices.c.agent_id)
        .where(
            agents.c.state == AgentState.ONLINE,
            devices.c.kind == "host",
            devices.c.removed.is_(False),
            devices.c.state != DeviceState.OFFLINE,
        )
        .order_by(agents.c.name, devices.c.id)
    )
    return [
        HostSlot(
            agent=row.agent,
            device_id=row.id,
            free=row.state == DeviceState.FREE,
            labels={**(row.agent_labels or {}), **(row.labels or {})},
            capabilities=dict(row.capabilities or {}),
        )
        for row in rows
    ]
