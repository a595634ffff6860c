"""The `testfleet` command: global options, the job and inventory commands, the server commands."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from testfleet.cli import agent_command, inventory, job_results, probe, serve
from testfleet.cli.automation import schedule_app, webhook_app
from testfleet.cli.context import HUB_ENV, TIMEOUT_ENV, TOKEN_ENV, HubOptions
from testfleet.cli.coverage import coverage_app
from testfleet.cli.dev import dev_app
from testfleet.cli.globals import clean_metavars, hoist
from testfleet.cli.jobs import job_app
from testfleet.cli.output import EXIT_FAILED, EXIT_INTERRUPTED
from testfleet.cli.plans import plan_app
from testfleet.cli.sessions import sessions_app
from testfleet.cli.tokens import tokens_app
from testfleet.client import DEFAULT_HUB, DEFAULT_TIMEOUT

app = typer.Typer(
    rich_markup_mode=None,
    name="testfleet",
    help="testfleet: a self-hosted control plane for test labs.",
    epilog="Exit codes: 0 success; 1 a failed or cancelled job, an unreachable hub or an error "
    "the hub reported; 2 bad usage or input (options, files, invalid descriptors).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _options(
    ctx: typer.Context,
    hub: Annotated[
        str, typer.Option("--hub", envvar=HUB_ENV, help="The hub's URL.", metavar="URL")
    ] = DEFAULT_HUB,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar=TOKEN_ENV,
            help="An API token, when the hub requires one.",
            metavar="TOKEN",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            envvar=TIMEOUT_ENV,
            help="Seconds to wait for each answer of the hub.",
            metavar="SECONDS",
            min=0.1,
        ),
    ] = DEFAULT_TIMEOUT,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the API's JSON instead of tables (any command)."),
    ] = False,
) -> None:
    """testfleet: a self-hosted control plane for test labs."""
    ctx.obj = HubOptions(hub, token or None, timeout, json=as_json)


job_results.register(job_app, app)
app.add_typer(job_app, name="job")
app.add_typer(plan_app, name="plan")
inventory.register(app)
serve.register(app)
agent_command.register(app)
app.add_typer(tokens_app, name="token")
app.add_typer(webhook_app, name="webhook")
app.add_typer(schedule_app, name="schedule")
app.add_typer(sessions_app, name="sessions")
app.add_typer(coverage_app, name="coverage")
app.add_typer(dev_app, name="dev")
probe.register(app)


def main() -> None:
    """The console script `testfleet`."""
    command = typer.main.get_command(app)
    clean_metavars(command)
    try:
        command.main(args=hoist(sys.argv[1:]), prog_name="testfleet")
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`testfleet job list | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_FAILED)
