"""Whom an admin action addresses: one probe, or an application's probes of one build."""

from __future__ import annotations

from dataclasses import dataclass

from testfleet.hub.coverage.connections import ProbeConnections
from testfleet.hub.errors import ApiError
from testfleet.store import coverage as coverage_store
from testfleet.store.coverage_records import BuildRecord, ProbeRecord
from testfleet.store.db import Store


@dataclass(frozen=True)
class Target:
    """Whom an action addresses: one probe, or an application's probes (of one build)."""

    agent_id: str | None = None
    app: str | None = None
    build: str | None = None


async def resolve(
    store: Store, connections: ProbeConnections, target: Target
) -> tuple[BuildRecord, list[ProbeRecord]]:
    """The build an action addresses and its probes connected here; 404 when there are
    none, 409 when they are connected to another hub."""
    if target.agent_id is not None:
        probes = await store.read(coverage_store.list_probes, agent_id=target.agent_id)
        if not probes:
            raise ApiError(
                404,
                "agent_not_found",
                f"agent not found: no probe {target.agent_id!r} is connected",
            )
    else:
        probes = await store.read(coverage_store.list_probes, app=target.app)
        if target.build is not None:
            probes = [p for p in probes if p.version == target.build]
        if not probes:
            which = f" build {target.build!r}" if target.build else ""
            raise ApiError(
                404,
                "agent_not_found",
                f"no probe of application {target.app!r}{which} is connected",
            )
        newest = max(probes, key=lambda p: p.connected_at)
        probes = [p for p in probes if p.build_id == newest.build_id]
    here = [p for p in probes if connections.get(p.agent_id) is not None]
    if not here:
        hubs = ", ".join(sorted({p.hub for p in probes}))
        raise ApiError(
            409,
            "probe_elsewhere",
            f"the probes are connected to another hub ({hubs}): send the action there",
        )
    probes = here
    build = await store.read(coverage_store.get_build_by_id, probes[0].build_id)
    assert build is not None
    return build, probes
