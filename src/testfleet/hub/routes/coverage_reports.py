"""Coverage reports (per session, per build, per test), source views, builds, and test
impact analysis (risks, tests to run)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from testfleet.hub.coverage import impact
from testfleet.hub.coverage.folding import fold
from testfleet.hub.coverage.reports import (
    MEDIA_TYPES,
    cobertura_report,
    json_report,
    lcov_report,
    lines_of,
    totals,
)
from testfleet.hub.errors import ApiError
from testfleet.hub.routes.coverage import require_session
from testfleet.hub.routes.deps import HubDep, Reader
from testfleet.hub.runtime import Hub
from testfleet.protocol.coverage_api import (
    AppInfo,
    AppList,
    BuildInfo,
    BuildList,
    Report,
    Risks,
    SourceLine,
    SourceView,
    TestsToRun,
)
from testfleet.store import coverage as coverage_store
from testfleet.store import coverage_data
from testfleet.store.coverage_records import BuildRecord, SessionRecord

router = APIRouter(prefix="/api/v1/coverage", tags=["coverage"])
Format = Literal["json", "cobertura", "lcov"]
_REPORT_DOC = {
    "responses": {
        200: {
            "content": {
                "application/json": {"schema": Report.model_json_schema()},
                "application/xml": {},
                "text/plain": {},
            }
        }
    }
}


async def _build(hub: Hub, app: str, version: str) -> BuildRecord:
    build = await hub.store.read(coverage_store.get_build, app, version)
    if build is None:
        raise ApiError(404, "build_not_found", f"build not found: {app!r} {version!r}")
    return build


async def _sessions_of(hub: Hub, build: BuildRecord, wanted: list[str]) -> list[SessionRecord]:
    sessions = await impact.sessions_of(hub.store, build)
    if not wanted:
        return sessions
    by_id = {s.id: s for s in sessions}
    missing = [s for s in wanted if s not in by_id]
    if missing:
        raise ApiError(
            404,
            "session_not_found",
            f"session not found in build {build.version!r}: {missing[0]!r}",
        )
    return [by_id[s] for s in wanted]


async def _report(
    hub: Hub, build: BuildRecord, sessions: list[SessionRecord], form: Format, test: str | None
) -> StreamingResponse:
    folded = await fold(hub.store, sessions, per_test=form == "json", test=test)
    stream: AsyncIterator[str]
    if form == "json":
        stream = json_report(hub.store, build, [s.id for s in sessions], folded, test)
    elif form == "cobertura":
        stream = cobertura_report(hub.store, build, folded, build.app)
    else:
        stream = lcov_report(hub.store, build, folded, test)
    return StreamingResponse(stream, media_type=MEDIA_TYPES[form])


@router.get(
    "/sessions/{session_id}/report",
    summary="A session's coverage: json (per file, function, test), cobertura or lcov",
    openapi_extra=_REPORT_DOC,
)
async def session_report(
    session_id: str,
    hub: HubDep,
    _: Reader,
    format: Format = "json",
    test: str | None = None,
) -> StreamingResponse:
    session = await require_session(hub, session_id)
    if session.state == "cancelled":
        raise ApiError(409, "session_cancelled", f"session {session_id!r} was cancelled: no data")
    build = await hub.store.read(coverage_store.get_build_by_id, session.build_id)
    assert build is not None
    return await _report(hub, build, [session], format, test)


@router.get("/apps", response_model=AppList, summary="Applications, with their newest build")
async def list_apps(hub: HubDep, _: Reader) -> AppList:
    apps = await hub.store.read(coverage_store.list_apps)
    probes = Counter(p.app for p in await hub.store.read(coverage_store.list_probes))
    infos = []
    for app, count, newest_id in apps:
        newest = await hub.store.read(coverage_store.get_build_by_id, newest_id)
        assert newest is not None
        infos.append(
            AppInfo(
                app=app,
                builds=count,
                latest_build=newest.version,
                latest_at=newest.created_at,
                probes_connected=probes[app],
            )
        )
    return AppList(apps=infos)


@router.get("/builds", response_model=BuildList, summary="Builds, newest first")
async def list_builds(
    hub: HubDep,
    _: Reader,
    app: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> BuildList:
    builds = await hub.store.read(coverage_store.list_builds, app, limit)
    return BuildList(builds=[_build_info(b, None) for b in builds])


@router.get(
    "/builds/{app}/{build}", response_model=BuildInfo, summary="One build, with its coverage"
)
async def get_build(app: str, build: str, hub: HubDep, _: Reader) -> BuildInfo:
    record = await _build(hub, app, build)
    folded = await fold(hub.store, await impact.sessions_of(hub.store, record))
    return _build_info(record, folded.covered)


def _build_info(build: BuildRecord, covered: int | None) -> BuildInfo:
    return BuildInfo(
        app=build.app,
        build=build.version,
        parent=build.parent,
        classes=build.classes,
        functions=build.functions,
        probes=build.probes,
        created_at=build.created_at,
        totals=totals(covered, build.probes) if covered is not None else None,
    )


@router.get(
    "/builds/{app}/{build}/report",
    summary="A build's coverage over its sessions (all, or ?session= repeated; ?test= one test)",
    openapi_extra=_REPORT_DOC,
)
async def build_report(
    app: str,
    build: str,
    hub: HubDep,
    _: Reader,
    format: Format = "json",
    test: str | None = None,
    session: Annotated[list[str], Query()] = [],  # noqa: B006
) -> StreamingResponse:
    record = await _build(hub, app, build)
    return await _report(hub, record, await _sessions_of(hub, record, session), format, test)


@router.get(
    "/builds/{app}/{build}/source",
    response_model=SourceView,
    summary="A module's source with covered and missed lines (over ?session=, for ?test=)",
)
async def source(
    app: str,
    build: str,
    path: str,
    hub: HubDep,
    _: Reader,
    test: str | None = None,
    session: Annotated[list[str], Query()] = [],  # noqa: B006
) -> SourceView:
    record = await _build(hub, app, build)
    found = await hub.store.read(coverage_data.class_named, record.id, path)
    if found is None:
        raise ApiError(404, "file_not_found", f"query.path: {path!r} is not a module of the build")
    cls, text = found
    sessions = await _sessions_of(hub, record, session)
    folded = await fold(hub.store, sessions, per_test=True, test=test)
    mask = folded.classes.get(cls.idx, 0)
    covered, _missed = lines_of(cls, mask)
    covered_set, statements = set(covered), set(cls.lines)
    source_lines = (text or "").splitlines()
    return SourceView(
        app=app,
        build=build,
        path=path,
        totals=totals(len(covered), len(cls.lines)),
        lines=[
            SourceLine(
                number=number,
                text=line,
                state="covered"
                if number in covered_set
                else "missed"
                if number in statements
                else "none",
            )
            for number, line in enumerate(source_lines, 1)
        ],
        tests=sorted(name for name, by_class in folded.tests.items() if by_class.get(cls.idx)),
    )


@router.get(
    "/builds/{app}/{build}/risks", response_model=Risks, summary="New and modified functions"
)
async def risks(app: str, build: str, hub: HubDep, _: Reader) -> Risks:
    record = await _build(hub, app, build)
    parent = await hub.store.read(coverage_store.parent_build, record)
    found = await impact.risks(hub.store, record, parent)
    return Risks(
        app=app,
        build=build,
        parent=parent.version if parent else None,
        risks=found,
        total=len(found),
        tested=sum(1 for r in found if r.tested),
    )


@router.get(
    "/builds/{app}/{build}/tests-to-run",
    response_model=TestsToRun,
    summary="Tests of the parent build that touched a function modified in this one",
)
async def tests_to_run(app: str, build: str, hub: HubDep, _: Reader) -> TestsToRun:
    record = await _build(hub, app, build)
    parent = await hub.store.read(coverage_store.parent_build, record)
    return TestsToRun(
        app=app,
        build=build,
        parent=parent.version if parent else None,
        tests=await impact.tests_to_run(hub.store, record, parent),
    )
