"""`testfleet sessions`: WebDriver sessions through the hub's gateway; `kill` and `show`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table

from testfleet.cli import output
from testfleet.cli.context import hub_client, json_wanted
from testfleet.cli.output import print_json, reporting_errors
from testfleet.cli.render import local_time, state_text
from testfleet.protocol.sessions import SessionCommands, SessionInfo

sessions_app = typer.Typer(
    help="WebDriver sessions through the hub: list them, show one's commands, kill one.",
    invoke_without_command=True,
)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table.")]


@sessions_app.callback()
def list_sessions(
    ctx: typer.Context,
    state: Annotated[
        str,
        typer.Option(
            "--state", help="live (not over), all, or states: queued,active,lost,ended,failed ..."
        ),
    ] = "live",
    device: Annotated[str | None, typer.Option("--device", help="Only this device's.")] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent's.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    as_json: JsonFlag = False,
) -> None:
    """List sessions, newest first (live ones unless --state says otherwise)."""
    if ctx.invoked_subcommand is not None:
        return
    with reporting_errors(), hub_client(ctx) as client:
        result = client.sessions(state, device, agent, limit)
    if json_wanted(ctx, as_json):
        print_json(result)
    elif not result.sessions:
        output.stderr.print(f"no {state} sessions", style="dim")
    else:
        output.stdout.print(sessions_table(result.sessions))


def sessions_table(sessions: list[SessionInfo]) -> Table:
    """One row per session."""
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("#", "session id", "state", "device", "requestor", "created", "last command"):
        table.add_column(column, no_wrap=True)
    table.add_column("commands", justify="right")
    table.add_column("why it ended", overflow="fold")
    for s in sessions:
        table.add_row(
            str(s.id),
            s.session_id or "-",
            state_text(s.state),
            s.device_id or "-",
            s.requestor,
            local_time(s.created_at),
            local_time(s.last_command_at),
            str(s.commands),
            s.end_reason or "",
        )
    return table


@sessions_app.command("kill")
def kill(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="The session's number or WebDriver id.")],
    as_json: JsonFlag = False,
) -> None:
    """End a stuck session: on its node first, then its device is freed."""
    with reporting_errors(), hub_client(ctx) as client:
        result = client.kill_session(session)
    if json_wanted(ctx, as_json):
        print_json(result)
    else:
        output.print_line(f"session {result.id} is {result.state}: {result.end_reason or ''}")


@sessions_app.command("show")
def show(
    ctx: typer.Context,
    session: Annotated[str, typer.Argument(help="The session's number or WebDriver id.")],
    as_json: JsonFlag = False,
) -> None:
    """A session's command timeline: each command, the driver's status and how long it took."""
    with reporting_errors(), hub_client(ctx) as client:
        result = client.session_commands(session)
    if json_wanted(ctx, as_json):
        print_json(result)
    else:
        output.stdout.print(commands_table(result))


def commands_table(result: SessionCommands) -> Table:
    """One row per command."""
    table = Table(box=box.SIMPLE_HEAD, title=f"session {result.session}")
    for column in ("at", "command", "status", "error"):
        table.add_column(column, no_wrap=True)
    table.add_column("ms", justify="right")
    for c in result.commands:
        table.add_row(
            c.at.astimezone().strftime("%H:%M:%S.%f")[:-3],
            c.command,
            str(c.status),
            c.error or "",
            f"{c.duration_ms:.1f}",
        )
    return table
