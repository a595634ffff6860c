"""Job descriptors parsed once: at submit, or at a hub's first need of an older job."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from testfleet.protocol.descriptor import JobDescriptor
from testfleet.protocol.wire import StepSpec

CACHED_PLANS = 4096


@dataclass(frozen=True)
class JobPlan:
    """A job's checked descriptor, with each test's steps as agents get them."""

    descriptor: JobDescriptor
    steps: tuple[list[StepSpec], ...]

    @classmethod
    def of(cls, descriptor: JobDescriptor) -> JobPlan:
        """The plan of a checked descriptor."""
        return cls(
            descriptor=descriptor,
            steps=tuple(
                [
                    StepSpec(
                        name=s.name,
                        plugin=s.plugin,
                        params=s.params,
                        timeout=s.timeout,
                        artifacts=s.artifacts,
                        coverage=s.coverage is not None,
                    )
                    for s in test.steps
                ]
                for test in descriptor.tests
            ),
        )


class JobPlans:
    """A bounded cache of plans by job id in front of the jobs' stored descriptors, so a
    descriptor is validated once per hub, not on every send, resend and status."""

    def __init__(self, size: int = CACHED_PLANS) -> None:
        self._plans: OrderedDict[int, JobPlan] = OrderedDict()
        self._size = size

    def remember(self, job_id: int, descriptor: JobDescriptor) -> JobPlan:
        """Keep the plan of a descriptor checked at submit."""
        plan = JobPlan.of(descriptor)
        self._keep(job_id, plan)
        return plan

    def get(self, job_id: int, descriptor: dict[str, Any]) -> JobPlan:
        """The plan of a job, parsed from its stored `descriptor` on a miss."""
        plan = self._plans.get(job_id)
        if plan is None:
            plan = JobPlan.of(JobDescriptor.model_validate(descriptor))
            self._keep(job_id, plan)
        else:
            self._plans.move_to_end(job_id)
        return plan

    def cached(self, job_id: int) -> JobPlan | None:
        """The plan of a job if it is cached."""
        return self._plans.get(job_id)

    def forget(self, job_id: int) -> None:
        """Drop a finished job's plan."""
        self._plans.pop(job_id, None)

    def _keep(self, job_id: int, plan: JobPlan) -> None:
        self._plans[job_id] = plan
        self._plans.move_to_end(job_id)
        while len(self._plans) > self._size:
            self._plans.popitem(last=False)
