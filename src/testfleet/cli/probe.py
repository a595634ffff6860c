"""`testfleet probe`: run a Python application with a coverage probe, unchanged.

    testfleet probe --hub URL --app shop --build 1.4.0 -- python app.py --port 8000
    testfleet probe --app shop --build 1.4.0 -- python -m shop.server
    eval "$(testfleet probe --app shop --build 1.4.0 --print-env)"   # the environment form

The probe starts from a `sitecustomize` put first on PYTHONPATH, so every Python subprocess
of the application measures too (each as a probe of its own, of the same build). A bare
`python` or `python3` runs as the interpreter testfleet is installed in.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from testfleet.cli.context import TOKEN_ENV, hub_options
from testfleet.cli.output import EXIT_USAGE, print_error, print_line
from testfleet.probe.config import ProbeConfig, ProbeConfigError
from testfleet.probe.environ import probe_environment


def probe(
    ctx: typer.Context,
    app: Annotated[str, typer.Option("--app", help="The application's name.", metavar="NAME")],
    build: Annotated[
        str, typer.Option("--build", help="The version being run.", metavar="VERSION")
    ],
    hub: Annotated[
        str | None,
        typer.Option("--hub", help="The hub's URL \\[default: testfleet --hub].", metavar="URL"),
    ] = None,
    parent_build: Annotated[
        str | None,
        typer.Option(
            "--parent-build",
            help="The build this one follows \\[default: the application's previous build].",
            metavar="VERSION",
        ),
    ] = None,
    source: Annotated[
        list[Path] | None,
        typer.Option(
            "--source",
            help="A folder or file of the application to measure (repeat) \\[default: --base].",
        ),
    ] = None,
    base: Annotated[
        Path,
        typer.Option("--base", help="Module names are paths relative to this folder."),
    ] = Path("."),
    probe_id: Annotated[
        str | None,
        typer.Option(
            "--id", help="A prefix for the probes' ids \\[default: APP-HOST].", metavar="ID"
        ),
    ] = None,
    no_source: Annotated[
        bool, typer.Option("--no-source", help="Do not send module sources to the hub.")
    ] = False,
    branch: Annotated[
        bool, typer.Option("--branch", help="Measure branch arcs too (coverage.py's --branch).")
    ] = False,
    print_env: Annotated[
        bool,
        typer.Option("--print-env", help="Print the environment that starts the probe; exit."),
    ] = False,
) -> None:
    """Run COMMAND (after --) with a coverage probe in each of its Python processes."""
    options = hub_options(ctx)
    try:
        config = ProbeConfig(
            hub_url=hub or options.url,
            app=app,
            build=build,
            parent_build=parent_build,
            token=options.token or os.environ.get(TOKEN_ENV),
            sources=tuple(p.resolve() for p in source or ()),
            base=base.resolve(),
            agent_id=probe_id,
            send_source=not no_source,
            branch=branch,
        )
    except ProbeConfigError as error:
        print_error(str(error))
        raise typer.Exit(EXIT_USAGE) from None
    env = probe_environment(config)
    if print_env:
        for key in (*config.to_env(), "PYTHONPATH"):
            print_line(f"export {key}={shlex.quote(env[key])}")
        return
    command = list(ctx.args)
    if not command:
        print_error("give the command to run after --, e.g. -- python app.py")
        raise typer.Exit(EXIT_USAGE)
    if command[0] in ("python", "python3"):
        command[0] = sys.executable  # the interpreter testfleet is installed in
    executable = shutil.which(command[0])
    if executable is None:
        print_error(f"command not found: {command[0]}")
        raise typer.Exit(127)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(executable, command, env)


def register(app: typer.Typer) -> None:
    """Add `probe` to `app`."""
    app.command(
        "probe",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(probe)
