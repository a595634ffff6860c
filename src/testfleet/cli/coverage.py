"""`testfleet coverage ...`: sessions on probes, live coverage, reports, test impact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import httpx
import typer

from testfleet.cli import output
from testfleet.cli.context import hub_client, json_wanted
from testfleet.cli.coverage_render import (
    probes_table,
    report_table,
    risks_table,
    sessions_table,
    tests_table,
)
from testfleet.cli.output import UserInputError, print_json, print_line, reporting_errors
from testfleet.client import SseDecoder
from testfleet.client.coverage import CoverageClient
from testfleet.protocol.coverage_api import ActionResult, SessionInfo

coverage_app = typer.Typer(
    help="Coverage sessions on probes (Drill4J's protocol), reports and test impact analysis.",
    no_args_is_help=True,
)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the API's JSON.")]
Agent = Annotated[str | None, typer.Option("--agent", help="One probe, by id.", metavar="ID")]
App = Annotated[str | None, typer.Option("--app", help="Every probe of an application.")]
Build = Annotated[str | None, typer.Option("--build", help="The build \\[default: the newest].")]


def _target(agent: str | None, app: str | None, build: str | None) -> dict[str, str | None]:
    if (agent is None) == (app is None):
        raise UserInputError("give --agent ID or --app NAME (one of them)")
    return (
        {"agent": agent, "app": None, "build": None}
        if agent
        else {"agent": None, "app": app, "build": build}
    )


def _print_result(result: ActionResult, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    for session in result.sessions:
        print_line(_session_line(session))


def _session_line(s: SessionInfo) -> str:
    t = s.totals
    return (
        f"{s.sessionId}  {s.state}  {s.app} {s.build}  {t.covered}/{t.total} probes "
        f"({t.percent:.1f} %)"
    )


@coverage_app.command("start")
def start(
    ctx: typer.Context,
    agent: Agent = None,
    app: App = None,
    build: Build = None,
    session_id: Annotated[str | None, typer.Option("--session-id", help="\\[default: new]")] = None,
    test_type: Annotated[str, typer.Option("--test-type", help="MANUAL, AUTO, ...")] = "MANUAL",
    test_name: Annotated[str | None, typer.Option("--test-name")] = None,
    realtime: Annotated[
        bool, typer.Option("--realtime", help="Recalculate as parts come.")
    ] = False,
    is_global: Annotated[bool, typer.Option("--global", help="The one global session.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """START a session; prints its id."""
    with reporting_errors(), hub_client(ctx) as client:
        target = _target(agent, app, build)
        result = CoverageClient(client).start(
            session_id=session_id,
            test_type=test_type,
            test_name=test_name,
            realtime=realtime,
            is_global=is_global,
            agent=target["agent"],
            app=target["app"],
            build=target["build"],
        )
    if json_wanted(ctx, as_json):
        print_json(result)
    else:
        print_line(result.sessions[0].sessionId)


@coverage_app.command("stop")
def stop(
    ctx: typer.Context,
    session_id: Annotated[str | None, typer.Argument(help="\\[default: STOP_ALL]")] = None,
    agent: Agent = None,
    app: App = None,
    build: Build = None,
    as_json: JsonFlag = False,
) -> None:
    """STOP a session (every open one without SESSION_ID); prints the totals."""
    with reporting_errors(), hub_client(ctx) as client:
        result = CoverageClient(client).stop(session_id, **_target(agent, app, build))
    _print_result(result, json_wanted(ctx, as_json))


@coverage_app.command("cancel")
def cancel(
    ctx: typer.Context,
    session_id: Annotated[str | None, typer.Argument(help="\\[default: CANCEL_ALL]")] = None,
    agent: Agent = None,
    app: App = None,
    build: Build = None,
    as_json: JsonFlag = False,
) -> None:
    """CANCEL a session (every open one without SESSION_ID): its data is discarded."""
    with reporting_errors(), hub_client(ctx) as client:
        result = CoverageClient(client).cancel(session_id, **_target(agent, app, build))
    _print_result(result, json_wanted(ctx, as_json))


@coverage_app.command("agents")
def agents(ctx: typer.Context, app: App = None, as_json: JsonFlag = False) -> None:
    """List the connected probes."""
    with reporting_errors(), hub_client(ctx) as client:
        result = CoverageClient(client).probes(app)
    if json_wanted(ctx, as_json):
        print_json(result)
    elif not result.agents:
        output.stderr.print("no probes are connected", style="dim")
    else:
        output.stdout.print(probes_table(result.agents))


@coverage_app.command("sessions")
def sessions(
    ctx: typer.Context,
    app: App = None,
    build: Build = None,
    state: Annotated[list[str] | None, typer.Option("--state", help="active, finished...")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List sessions, newest first."""
    with reporting_errors(), hub_client(ctx) as client:
        result = CoverageClient(client).sessions(app, build, tuple(state or ()))
    if json_wanted(ctx, as_json):
        print_json(result)
    elif not result.sessions:
        output.stderr.print("no sessions", style="dim")
    else:
        output.stdout.print(sessions_table(result.sessions))


@coverage_app.command("watch")
def watch(ctx: typer.Context, session_id: str) -> None:
    """Follow a session's coverage live until it ends (one line per change)."""
    with reporting_errors(), hub_client(ctx) as client:
        CoverageClient(client).session(session_id)  # 404 here, with the usual message
        url = f"{client.base_url}/api/v1/coverage/sessions/{session_id}/live"
        decoder = SseDecoder()
        timeout = httpx.Timeout(client.timeout, read=60.0)
        try:
            with httpx.stream("GET", url, headers=dict(client._http.headers), timeout=timeout) as r:
                for chunk in r.iter_bytes():
                    for event in decoder.feed(chunk):
                        if event.event == "end":
                            return
                        info = SessionInfo.model_validate(
                            {k: v for k, v in json.loads(event.data).items() if k != "probeCount"}
                        )
                        print_line(_session_line(info))
        except httpx.TransportError as error:
            raise UserInputError(f"the live stream broke: {error}") from None


@coverage_app.command("report")
def report(
    ctx: typer.Context,
    session_id: Annotated[str | None, typer.Argument(help="\\[default: a build's report]")] = None,
    app: App = None,
    build: Build = None,
    test: Annotated[str | None, typer.Option("--test", help="Only what this test covered.")] = None,
    form: Annotated[
        str, typer.Option("--format", help="table, json, cobertura or lcov.")
    ] = "table",
    functions: Annotated[bool, typer.Option("--functions", help="A row per function.")] = False,
    out: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None,
) -> None:
    """A session's (or a build's: --app --build) coverage per module, as a table or a file."""
    if form not in ("table", "json", "cobertura", "lcov"):
        raise typer.BadParameter(
            f"{form!r}: use table, json, cobertura or lcov", param_hint="--format"
        )
    if session_id is None and (app is None or build is None):
        raise typer.BadParameter("give SESSION_ID, or --app and --build for a build's report")
    with reporting_errors(), hub_client(ctx) as client:
        api = CoverageClient(client)
        if form == "table":
            if session_id is not None:
                data = api.report(session_id, test)
            else:
                assert app is not None and build is not None
                data = api.build_report(app, build, test)
            output.stdout.print(report_table(data, functions=functions))
            return
        text = api.report_text(form, session_id=session_id, app=app, build=build, test=test)
    if out is not None:
        out.write_text(text)
        output.stderr.print(f"wrote {out}", style="dim")
    else:
        output.write_text(text)


@coverage_app.command("risks")
def risks(
    ctx: typer.Context,
    app: Annotated[str, typer.Option("--app")],
    build: Annotated[str, typer.Option("--build")],
    as_json: JsonFlag = False,
) -> None:
    """New and modified functions of a build since its parent, and which are tested."""
    with reporting_errors(), hub_client(ctx) as client:
        result = CoverageClient(client).risks(app, build)
    if json_wanted(ctx, as_json):
        print_json(result)
    else:
        output.stdout.print(risks_table(result))


@coverage_app.command("tests-to-run")
def tests_to_run(
    ctx: typer.Context,
    app: Annotated[str, typer.Option("--app")],
    build: Annotated[str, typer.Option("--build")],
    as_json: JsonFlag = False,
) -> None:
    """Tests of the parent build that touched a function modified in this build."""
    with reporting_errors(), hub_client(ctx) as client:
        result = CoverageClient(client).tests_to_run(app, build)
    if json_wanted(ctx, as_json):
        print_json(result)
    else:
        output.stdout.print(tests_table(result))
