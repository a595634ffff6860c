"""Coverage builds, connected probes and sessions (the rows; their data is in
`coverage_data.py`). Plain functions of a Connection, like every query of the store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from testfleet.protocol.coverage import AstClass
from testfleet.store.coverage_records import BuildRecord, ProbeRecord, SessionRecord
from testfleet.store.tables import (
    coverage_builds,
    coverage_classes,
    coverage_functions,
    coverage_probes,
    coverage_sessions,
)

INSERT_CHUNK = 2000


@dataclass(frozen=True)
class BuildConflict:
    """The build exists with other code (a different checksum)."""

    existing: BuildRecord


def get_build(conn: Connection, app: str, version: str) -> BuildRecord | None:
    """A build by application and version."""
    row = conn.execute(
        select(coverage_builds).where(
            coverage_builds.c.app == app, coverage_builds.c.version == version
        )
    ).first()
    return BuildRecord.from_row(row) if row is not None else None


def get_build_by_id(conn: Connection, build_id: int) -> BuildRecord | None:
    """A build by id."""
    row = conn.execute(select(coverage_builds).where(coverage_builds.c.id == build_id)).first()
    return BuildRecord.from_row(row) if row is not None else None


def list_builds(conn: Connection, app: str | None = None, limit: int = 100) -> list[BuildRecord]:
    """Builds, newest first."""
    query = select(coverage_builds).order_by(coverage_builds.c.id.desc()).limit(limit)
    if app is not None:
        query = query.where(coverage_builds.c.app == app)
    return [BuildRecord.from_row(r) for r in conn.execute(query)]


def list_apps(conn: Connection) -> list[tuple[str, int, int]]:
    """Every application: (name, number of builds, id of its newest build)."""
    rows = conn.execute(
        select(
            coverage_builds.c.app,
            func.count(coverage_builds.c.id),
            func.max(coverage_builds.c.id),
        )
        .group_by(coverage_builds.c.app)
        .order_by(coverage_builds.c.app)
    )
    return [(row[0], int(row[1]), int(row[2])) for row in rows]


def parent_build(conn: Connection, build: BuildRecord) -> BuildRecord | None:
    """The build `build` follows: the one it names, else the application's previous one."""
    if build.parent:
        return get_build(conn, build.app, build.parent)
    row = conn.execute(
        select(coverage_builds)
        .where(coverage_builds.c.app == build.app, coverage_builds.c.id < build.id)
        .order_by(coverage_builds.c.id.desc())
        .limit(1)
    ).first()
    return BuildRecord.from_row(row) if row is not None else None


def add_build(
    conn: Connection,
    *,
    app: str,
    version: str,
    parent: str | None,
    checksum: str,
    classes: Sequence[AstClass],
    now: datetime,
) -> BuildRecord | BuildConflict:
    """Store a build with its classes and functions; an existing identical build is kept."""
    existing = get_build(conn, app, version)
    if existing is not None:
        return existing if existing.checksum == checksum else BuildConflict(existing)
    inserted = conn.execute(
        insert(coverage_builds).values(
            app=app,
            version=version,
            parent=parent,
            checksum=checksum,
            classes=len(classes),
            functions=sum(len(c.functions) for c in classes),
            probes=sum(len(c.lines) + len(c.arcs) for c in classes),
            created_at=now,
        )
    ).inserted_primary_key
    assert inserted is not None
    build_id = inserted[0]
    class_rows: list[dict[str, Any]] = []
    function_rows: list[dict[str, Any]] = []
    for idx, cls in enumerate(classes):
        class_rows.append(
            {
                "build_id": build_id,
                "idx": idx,
                "class_id": cls.id,
                "name": cls.name,
                "lines": cls.lines,
                "arcs": [list(arc) for arc in cls.arcs],
                "source": cls.source,
            }
        )
        for number, fn in enumerate(cls.functions):
            function_rows.append(
                {
                    "build_id": build_id,
                    "class_idx": idx,
                    "idx": number,
                    "name": fn.name,
                    "line": fn.line,
                    "end_line": fn.endLine,
                    "first": fn.first,
                    "count": fn.count,
                    "checksum": fn.checksum,
                }
            )
    for table, rows in ((coverage_classes, class_rows), (coverage_functions, function_rows)):
        for start in range(0, len(rows), INSERT_CHUNK):
            conn.execute(insert(table), rows[start : start + INSERT_CHUNK])
    build = get_build_by_id(conn, build_id)
    assert build is not None
    return build


# ---- probes ----------------------------------------------------------------------------------


def _probe_query() -> Any:
    return select(
        coverage_probes.c.agent_id,
        coverage_probes.c.app,
        coverage_probes.c.build_id,
        coverage_builds.c.version,
        coverage_probes.c.instance_id,
        coverage_probes.c.hub,
        coverage_probes.c.connected_at,
    ).join(coverage_builds, coverage_builds.c.id == coverage_probes.c.build_id)


def connect_probe(
    conn: Connection,
    *,
    agent_id: str,
    app: str,
    build_id: int,
    instance_id: str,
    hub: str,
    now: datetime,
) -> None:
    """Record a probe as connected to `hub`."""
    conn.execute(delete(coverage_probes).where(coverage_probes.c.agent_id == agent_id))
    conn.execute(
        insert(coverage_probes).values(
            agent_id=agent_id,
            app=app,
            build_id=build_id,
            instance_id=instance_id,
            hub=hub,
            connected_at=now,
        )
    )


def disconnect_probe(conn: Connection, agent_id: str, instance_id: str) -> None:
    """Forget a probe's connection (unless the same probe connected again meanwhile)."""
    conn.execute(
        delete(coverage_probes).where(
            coverage_probes.c.agent_id == agent_id, coverage_probes.c.instance_id == instance_id
        )
    )


def forget_hub_probes(conn: Connection, hub: str) -> None:
    """A hub starts: probes recorded as connected to it are not any more."""
    conn.execute(delete(coverage_probes).where(coverage_probes.c.hub == hub))


def list_probes(
    conn: Connection, app: str | None = None, agent_id: str | None = None
) -> list[ProbeRecord]:
    """Connected probes, by application and id."""
    query = _probe_query().order_by(coverage_probes.c.app, coverage_probes.c.agent_id)
    if app is not None:
        query = query.where(coverage_probes.c.app == app)
    if agent_id is not None:
        query = query.where(coverage_probes.c.agent_id == agent_id)
    return [ProbeRecord.from_row(r) for r in conn.execute(query)]


# ---- sessions --------------------------------------------------------------------------------


def _session_query() -> Any:
    return select(
        *(c for c in coverage_sessions.c), coverage_builds.c.version.label("version")
    ).join(coverage_builds, coverage_builds.c.id == coverage_sessions.c.build_id)


def get_session(conn: Connection, session_id: str) -> SessionRecord | None:
    """A session by id."""
    row = conn.execute(_session_query().where(coverage_sessions.c.id == session_id)).first()
    return SessionRecord.from_row(row) if row is not None else None


def list_sessions(
    conn: Connection,
    *,
    app: str | None = None,
    build_id: int | None = None,
    states: Sequence[str] = (),
    agent_id: str | None = None,
    limit: int = 100,
) -> list[SessionRecord]:
    """Sessions, newest first."""
    query = _session_query().order_by(coverage_sessions.c.started_at.desc()).limit(limit)
    if app is not None:
        query = query.where(coverage_sessions.c.app == app)
    if build_id is not None:
        query = query.where(coverage_sessions.c.build_id == build_id)
    if states:
        query = query.where(coverage_sessions.c.state.in_(list(states)))
    sessions = [SessionRecord.from_row(r) for r in conn.execute(query)]
    if agent_id is not None:
        sessions = [s for s in sessions if agent_id in s.agents]
    return sessions


@dataclass(frozen=True)
class SessionRefused:
    """Why a session was not created: `status` is the HTTP status that says so."""

    status: int
    code: str
    message: str


def create_session(
    conn: Connection,
    *,
    session_id: str,
    build: BuildRecord,
    test_type: str,
    test_name: str | None,
    is_realtime: bool,
    is_global: bool,
    agents: list[str],
    scope: str,
    started_by: str,
    job_id: int | None,
    now: datetime,
) -> SessionRecord | SessionRefused:
    """A new active session; refused if the id is taken or a second global session would
    run on the application."""
    if get_session(conn, session_id) is not None:
        return SessionRefused(409, "session_exists", f"session {session_id!r} exists already")
    if is_global:
        running = list_sessions(conn, app=build.app, states=("active", "stopping"), limit=1000)
        clash = next((s for s in running if s.is_global), None)
        if clash is not None:
            return SessionRefused(
                409,
                "global_session_active",
                f"application {build.app!r} has a global session already ({clash.id}); "
                "stop it first: only one global session runs at a time",
            )
    conn.execute(
        insert(coverage_sessions).values(
            id=session_id,
            build_id=build.id,
            app=build.app,
            test_type=test_type,
            test_name=test_name,
            is_realtime=is_realtime,
            is_global=is_global,
            state="active",
            agents=agents,
            scope=scope,
            started_at=now,
            started_by=started_by,
            job_id=job_id,
            covered=0,
            total=build.probes,
        )
    )
    session = get_session(conn, session_id)
    assert session is not None
    return session


def add_session_agent(conn: Connection, session_id: str, agent_id: str) -> None:
    """A probe joined an open session."""
    session = get_session(conn, session_id)
    if session is not None and agent_id not in session.agents:
        conn.execute(
            update(coverage_sessions)
            .where(coverage_sessions.c.id == session_id)
            .values(agents=[*session.agents, agent_id])
        )


def set_session_state(
    conn: Connection, session_id: str, state: str, *, only_from: Sequence[str] = ()
) -> bool:
    """Move a session to `state` (from one of `only_from`, when given); True if it moved."""
    query = update(coverage_sessions).where(coverage_sessions.c.id == session_id)
    if only_from:
        query = query.where(coverage_sessions.c.state.in_(list(only_from)))
    return bool(conn.execute(query.values(state=state)).rowcount)
