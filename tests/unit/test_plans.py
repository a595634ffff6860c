"""Job plans: a descriptor parsed once per hub, kept in a bounded cache."""

from __future__ import annotations

from testfleet.hub.plans import JobPlans
from testfleet.protocol.descriptor import JobDescriptor

DESCRIPTOR = {
    "name": "j",
    "tests": [{"name": "t", "steps": [{"name": "s", "plugin": "sleep", "timeout": "5s"}]}],
}


def test_a_plan_holds_each_tests_steps_as_agents_get_them() -> None:
    plan = JobPlans().get(1, DESCRIPTOR)
    (steps,) = plan.steps
    assert [(s.name, s.plugin, s.timeout) for s in steps] == [("s", "sleep", 5.0)]


def test_a_remembered_plan_is_not_parsed_again() -> None:
    plans = JobPlans()
    remembered = plans.remember(7, JobDescriptor.model_validate(DESCRIPTOR))
    assert plans.get(7, {"not": "parsed"}) is remembered


def test_the_cache_keeps_the_most_recently_used() -> None:
    plans = JobPlans(size=2)
    for job_id in (1, 2):
        plans.get(job_id, DESCRIPTOR)
    plans.get(1, DESCRIPTOR)
    plans.get(3, DESCRIPTOR)
    assert plans.cached(1) is not None
    assert plans.cached(2) is None
    plans.forget(1)
    assert plans.cached(1) is None
