"""API documents of plan tasks and runs, from store records."""

from __future__ import annotations

from datetime import datetime

from testfleet.protocol.manifest import Manifest
from testfleet.protocol.plan_api import (
    GroupInfo,
    InstanceInfo,
    InstanceState,
    PlanInfo,
    PlanTask,
    TaskStateEntry,
)
from testfleet.store.plan_records import InstanceRecord, PlanRecord, PlanTaskRecord


def task_view(task: PlanTaskRecord) -> PlanTask:
    """A task as the daemon API shows it."""
    return PlanTask(
        id=task.id,
        type="build" if task.type == "build" else "run",
        plan=task.plan,
        case=task.case,
        runner=task.runner,
        builder=task.builder,
        states=[
            TaskStateEntry(state=entry["state"], created=datetime.fromisoformat(entry["created"]))
            for entry in task.history
        ],
        result=task.result,
        error=task.error,
        requestor=task.requestor,
        created=task.created_at,
        job_id=task.job_id,
    )


def plan_view(plan: PlanRecord) -> PlanInfo:
    """A plan as the catalog shows it."""
    return PlanInfo(
        name=plan.name,
        source_hash=plan.source_hash,
        source_size=plan.size,
        imported_at=plan.imported_at,
        manifest=Manifest.model_validate(plan.manifest),
    )


def instance_view(instance: InstanceRecord) -> InstanceInfo:
    """One instance of a run."""
    return InstanceInfo(
        seq=instance.seq,
        group_id=instance.group_id,
        group_seq=instance.group_seq,
        agent=instance.agent,
        state=instance.state,
        exit_code=instance.exit_code,
        error=instance.error,
        started_at=instance.started_at,
        ended_at=instance.ended_at,
    )


def group_views(task: PlanTaskRecord, instances: list[InstanceRecord]) -> list[GroupInfo]:
    """A run's groups, in composition order, each with its instances and outcome so far."""
    groups = []
    composition = task.composition
    by_group: dict[str, list[InstanceRecord]] = {}
    for instance in instances:
        by_group.setdefault(instance.group_id, []).append(instance)
    for group in composition.get("groups", []):
        members = by_group.get(group["id"], [])
        groups.append(
            GroupInfo(
                id=group["id"],
                count=len(members) or int(group.get("instances", {}).get("count") or 0),
                params=dict(group.get("run", {}).get("test_params", {})),
                ok=sum(1 for m in members if m.state == InstanceState.SUCCESS),
                instances=[instance_view(m) for m in members],
            )
        )
    return groups
