"""The job a run is: one test whose devices are one host slot per chosen agent, and one
`plan` step carrying every agent's share (each agent runs the share under its name)."""

from __future__ import annotations

from testfleet.hub.testplans.compose import ResolvedRun
from testfleet.hub.testplans.placement import Placement
from testfleet.protocol.descriptor import (
    DeviceRequest,
    JobDescriptor,
    StepDescriptor,
    TestDescriptor,
)
from testfleet.protocol.wire import utcnow
from testfleet.steps.plan.params import GroupSpec, InstanceSpec, PlanStepParams

STEP_MARGIN = 120.0
"""The plan step's own timeout beyond the instances': time for reports and outputs."""


def run_descriptor(
    task_id: str,
    run: ResolvedRun,
    config: dict[str, str],
    sources: tuple[str, str | None],
    placement: Placement,
) -> JobDescriptor:
    timeout = max(g.run_config.timeout for g in run.groups)
    shares: dict[str, list[InstanceSpec]] = {}
    for instance in placement.instances:
        shares.setdefault(instance.agent, []).append(
            InstanceSpec(seq=instance.seq, group=instance.group_id, group_seq=instance.group_seq)
        )
    params = PlanStepParams(
        run_id=task_id,
        plan=run.plan,
        case=run.case,
        source_hash=sources[0],
        sdk_hash=sources[1],
        entry=config["entry"],
        requirements=config["requirements"],
        total=run.total,
        groups=[GroupSpec(id=g.id, count=g.count, params=g.params) for g in run.groups],
        shares=shares,
        timeout=timeout,
        start_time=utcnow().isoformat(),
    )
    return JobDescriptor(
        name=f"plan {run.plan}/{run.case} {task_id}",
        tags=["plan", f"plan:{run.plan}", f"run:{task_id}"],
        tests=[
            TestDescriptor(
                name=f"{run.plan}/{run.case}",
                devices=DeviceRequest(
                    count=len(placement.slots),
                    names=sorted(placement.slots.values()),
                    kind="host",
                    timeout=run.run_config.placement_timeout,
                ),
                steps=[
                    StepDescriptor(
                        name="instances",
                        plugin="plan",
                        params=params.model_dump(mode="json"),
                        timeout=timeout + STEP_MARGIN,
                    )
                ],
            )
        ],
    )
