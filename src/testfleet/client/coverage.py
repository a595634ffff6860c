"""The coverage endpoints of the HTTP API, for the blocking client.

with Client(url) as hub:
    cov = CoverageClient(hub)
    session = cov.start(app="shop", test_type="AUTO").sessions[0]
    ...
    cov.stop(session.sessionId, app="shop")
    report = cov.report(session.sessionId)
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel

from testfleet.client import responses
from testfleet.client.calls import API, JSON, Call, Params
from testfleet.client.sync import Client
from testfleet.protocol.coverage_api import (
    ActionResult,
    BuildList,
    ProbeList,
    Report,
    Risks,
    SessionInfo,
    SessionList,
    SourceView,
    TestsToRun,
)

COVERAGE = f"{API}/coverage"
M = TypeVar("M", bound=BaseModel)


def _target(agent: str | None, app: str | None, build: str | None) -> tuple[str, Params]:
    if (agent is None) == (app is None):
        raise ValueError("address either one probe (agent) or an application (app)")
    if agent is not None:
        return f"{COVERAGE}/agents/{agent}/dispatch-action", []
    return f"{COVERAGE}/apps/{app}/dispatch-action", [("build", build)] if build else []


def dispatch(
    action: dict[str, Any],
    *,
    agent: str | None = None,
    app: str | None = None,
    build: str | None = None,
) -> Call[ActionResult]:
    """`POST .../dispatch-action` with a Drill4J action (`{"type": ..., "payload": ...}`)."""
    path, params = _target(agent, app, build)
    return Call(
        "POST",
        path,
        lambda r: responses.parse_model(r, ActionResult),
        params=params,
        content=json.dumps(action).encode(),
        headers={"Content-Type": JSON},
    )


class CoverageClient:
    """Coverage sessions, reports and test impact analysis through a `Client`."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def dispatch(self, action: dict[str, Any], **target: str | None) -> ActionResult:
        """Send any admin action to a probe (`agent=`) or an application (`app=`, `build=`)."""
        return self.client._call(dispatch(action, **target))

    def start(
        self,
        *,
        session_id: str | None = None,
        test_type: str = "MANUAL",
        test_name: str | None = None,
        realtime: bool = False,
        is_global: bool = False,
        job_id: int | None = None,
        agent: str | None = None,
        app: str | None = None,
        build: str | None = None,
    ) -> ActionResult:
        """START a session; the answer carries its `sessionId`."""
        payload: dict[str, Any] = {
            "testType": test_type,
            "isRealtime": realtime,
            "isGlobal": is_global,
        }
        if session_id:
            payload["sessionId"] = session_id
        if test_name:
            payload["testName"] = test_name
        if job_id is not None:
            payload["jobId"] = job_id
        return self.dispatch(
            {"type": "START", "payload": payload}, agent=agent, app=app, build=build
        )

    def stop(self, session_id: str | None = None, **target: str | None) -> ActionResult:
        """STOP a session (or STOP_ALL without one); returns it finished, with its totals."""
        if session_id is None:
            return self.dispatch({"type": "STOP_ALL"}, **target)
        return self.dispatch({"type": "STOP", "payload": {"sessionId": session_id}}, **target)

    def cancel(self, session_id: str | None = None, **target: str | None) -> ActionResult:
        """CANCEL a session (or CANCEL_ALL without one): its data is discarded."""
        if session_id is None:
            return self.dispatch({"type": "CANCEL_ALL"}, **target)
        return self.dispatch({"type": "CANCEL", "payload": {"sessionId": session_id}}, **target)

    def name_test(self, session_id: str, test_name: str, **target: str | None) -> ActionResult:
        """ADD_SESSION_DATA: the application runs `test_name` from now on."""
        data = json.dumps({"testName": test_name})
        action = {"type": "ADD_SESSION_DATA", "payload": {"sessionId": session_id, "data": data}}
        return self.dispatch(action, **target)

    def probes(self, app: str | None = None) -> ProbeList:
        """Connected probes."""
        params: Params = [("app", app)] if app else []
        return self._get(f"{COVERAGE}/agents", ProbeList, params)

    def sessions(
        self, app: str | None = None, build: str | None = None, states: tuple[str, ...] = ()
    ) -> SessionList:
        """Sessions, newest first."""
        params: Params = [("app", app), ("build", build), *(("state", s) for s in states)]
        return self._get(f"{COVERAGE}/sessions", SessionList, [p for p in params if p[1]])

    def session(self, session_id: str) -> SessionInfo:
        """One session."""
        return self._get(f"{COVERAGE}/sessions/{session_id}", SessionInfo, [])

    def report(self, session_id: str, test: str | None = None) -> Report:
        """A session's JSON report."""
        params: Params = [("test", test)] if test else []
        return self._get(f"{COVERAGE}/sessions/{session_id}/report", Report, params)

    def report_text(
        self,
        form: str,
        *,
        session_id: str | None = None,
        app: str | None = None,
        build: str | None = None,
        test: str | None = None,
    ) -> str:
        """A report as text (json, cobertura or lcov), of a session or of a build."""
        path = (
            f"{COVERAGE}/sessions/{session_id}/report"
            if session_id
            else f"{COVERAGE}/builds/{app}/{build}/report"
        )
        params: Params = [("format", form)]
        if test:
            params.append(("test", test))
        return self.client._call(Call("GET", path, responses.parse_text, params=params))

    def build_report(self, app: str, build: str, test: str | None = None) -> Report:
        """A build's JSON report over all its sessions."""
        params: Params = [("test", test)] if test else []
        return self._get(f"{COVERAGE}/builds/{app}/{build}/report", Report, params)

    def builds(self, app: str | None = None) -> BuildList:
        """Builds, newest first."""
        return self._get(f"{COVERAGE}/builds", BuildList, [("app", app)] if app else [])

    def source(self, app: str, build: str, path: str, test: str | None = None) -> SourceView:
        """A module's source with covered and missed lines."""
        params: Params = [("path", path)]
        if test:
            params.append(("test", test))
        return self._get(f"{COVERAGE}/builds/{app}/{build}/source", SourceView, params)

    def risks(self, app: str, build: str) -> Risks:
        """New and modified functions of a build, and whether they are tested."""
        return self._get(f"{COVERAGE}/builds/{app}/{build}/risks", Risks, [])

    def tests_to_run(self, app: str, build: str) -> TestsToRun:
        """The parent build's tests that touched what changed."""
        return self._get(f"{COVERAGE}/builds/{app}/{build}/tests-to-run", TestsToRun, [])

    def _get(self, path: str, model: type[M], params: Params) -> M:
        return self.client._call(
            Call("GET", path, lambda r: responses.parse_model(r, model), params=params)
        )
