"""`/healthcheck`: what a runner needs, checked; with fix=true, what can be repaired is."""

from __future__ import annotations

from testfleet.hub.testplans.placement import CLUSTER_AGENTS, LOCAL_EXEC
from testfleet.hub.testplans.runs import PlanRuns
from testfleet.protocol.plan_api import HealthCheck, HealthFix, HealthReport
from testfleet.store import plan_catalog, plan_runs, plan_tasks
from testfleet.store.db import Store


async def healthcheck(runner: str, fix: bool, store: Store, runs: PlanRuns) -> HealthReport:
    """The checks of `runner` (and the fixes, when asked)."""
    slots = await store.read(plan_runs.online_host_slots)
    agents = sorted({s.agent for s in slots})
    checks: list[HealthCheck] = []
    if runner == LOCAL_EXEC:
        local = runs.local_agent
        if local is None:
            single = len(agents) == 1
            checks.append(
                HealthCheck(
                    name="local agent configured",
                    status="omitted" if single else "failed",
                    message=(
                        f"no local agent is configured; the only online agent {agents[0]!r} is used"
                        if single
                        else "no local agent is configured (testfleet up starts one; "
                        "testfleet hub --local-agent NAME names one), and "
                        f"{len(agents)} agents are online"
                    ),
                )
            )
        else:
            checks.append(HealthCheck(name="local agent configured", status="ok", message=local))
            online = local in agents
            checks.append(
                HealthCheck(
                    name="local agent online",
                    status="ok" if online else "failed",
                    message=f"{local} is {'online' if online else 'not online with a host slot'}",
                )
            )
    elif runner == CLUSTER_AGENTS:
        checks.append(
            HealthCheck(
                name="agents online",
                status="ok" if agents else "failed",
                message=f"{len(agents)} agent(s) with host slots: {', '.join(agents) or 'none'}",
            )
        )
        blind = sorted({s.agent for s in slots if "cpus" not in s.capabilities})
        checks.append(
            HealthCheck(
                name="agents report resources",
                status="failed" if blind else "ok",
                message=(
                    f"these agents report no CPUs or memory (upgrade them): {', '.join(blind)}"
                    if blind
                    else "every online agent reports its CPUs and memory"
                ),
            )
        )
    stale = await store.read(plan_tasks.runs_to_finalize)
    checks.append(
        HealthCheck(
            name="runs finished",
            status="failed" if stale else "ok",
            message=(
                f"{len(stale)} run(s) whose job ended are not finished: "
                + ", ".join(t.id for t in stale)
                if stale
                else "every run whose job ended is finished"
            ),
        )
    )
    unused = await store.read(plan_catalog.unreferenced_sources)
    checks.append(
        HealthCheck(
            name="stored archives",
            status="ok",
            message=f"{len(unused)} archive(s) no plan or build uses",
        )
    )
    fixes: list[HealthFix] = []
    if fix:
        finished = await runs.sweep()
        fixes.append(
            HealthFix(
                name="runs finished",
                status="fixed" if finished else "unnecessary",
                message=f"finished {finished} run(s)",
            )
        )
        removed = await store.write(plan_catalog.delete_sources, unused)
        fixes.append(
            HealthFix(
                name="stored archives",
                status="fixed" if removed else "unnecessary",
                message=f"removed {removed} unused archive(s)",
            )
        )
    return HealthReport(runner=runner, checks=checks, fixes=fixes)
