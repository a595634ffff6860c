"""`testfleet hub`, `testfleet agent` and `testfleet up`: the long-running commands."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True, soft_wrap=True)

HOST = Annotated[str, typer.Option("--host", help="Address to listen on.")]
PORT = Annotated[int, typer.Option("--port", help="Port to listen on.")]
DATA_DIR = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where the SQLite store lives [default: $TESTFLEET_DATA_DIR or "
        "~/.local/share/testfleet].",
    ),
]
AUTH = Annotated[
    bool | None,
    typer.Option(
        "--auth/--no-auth",
        help="Require bearer tokens [default: off on loopback, on elsewhere].",
        show_default=False,
    ),
]
INSECURE = Annotated[
    bool,
    typer.Option("--insecure-no-auth", help="Allow serving a non-loopback address without auth."),
]
LOG_LEVEL = Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")]


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _labels(values: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{value!r}: a label is KEY=VALUE", param_hint="--label")
        labels[key] = val
    return labels


def register(app: typer.Typer) -> None:
    """Add the server commands to `app`."""

    @app.command("hub")
    def hub_command(
        host: HOST = "127.0.0.1",
        port: PORT = 8470,
        db: Annotated[
            str | None,
            typer.Option(
                "--db",
                help="Database URL: sqlite:///PATH or postgresql://USER@HOST/DB "
                "[default: SQLite in the data directory].",
            ),
        ] = None,
        data_dir: DATA_DIR = None,
        auth: AUTH = None,
        insecure_no_auth: INSECURE = False,
        server_id: Annotated[
            str | None,
            typer.Option(
                "--server-id", help="This hub's id in responses [default: HOSTNAME:PORT]."
            ),
        ] = None,
        event_timeout: Annotated[
            float,
            typer.Option("--event-timeout", help="Seconds the job API waits before answering 503."),
        ] = 3.0,
        agent_timeout: Annotated[
            float,
            typer.Option(
                "--agent-timeout", help="Seconds without a heartbeat before an agent is lost."
            ),
        ] = 5.0,
        max_running_jobs: Annotated[
            int,
            typer.Option(
                "--max-running-jobs",
                min=0,
                help="Jobs this hub runs at once; more wait queued (for it or other hubs on "
                "the same PostgreSQL). 0: serve the API and agents only.",
            ),
        ] = 2000,
        local_agent: Annotated[
            str | None,
            typer.Option(
                "--local-agent",
                help="The agent that runner local:exec runs plan instances on [default: the "
                "only online agent].",
                metavar="NAME",
            ),
        ] = None,
        log_level: LOG_LEVEL = "info",
    ) -> None:
        """Run the hub: the API, the job manager, the sync service and the agents' endpoint."""
        from testfleet.hub.config import HubConfig, default_data_dir
        from testfleet.hub.server import build_server

        _logging(log_level)
        config = HubConfig(
            host=host,
            port=port,
            db_url=db,
            data_dir=data_dir or default_data_dir(),
            server_id=server_id,
            auth=auth,
            insecure_no_auth=insecure_no_auth,
            event_timeout=event_timeout,
            agent_timeout=agent_timeout,
            max_running_jobs=max_running_jobs,
            local_agent=local_agent,
        )
        try:
            server = build_server(config, log_level=log_level)
        except ValueError as error:
            err.print(f"[red]error:[/red] {error}")
            raise typer.Exit(2) from None
        err.print(
            f"testfleet hub on [bold]http://{host}:{port}[/bold] "
            f"(auth {'on' if config.auth_enabled else 'off'})"
        )
        server.run()

    @app.command("agent")
    def agent_command(
        hub: Annotated[
            str, typer.Option("--hub", envvar="TESTFLEET_HUB", help="The hub's URL.")
        ] = "http://127.0.0.1:8470",
        name: Annotated[
            str | None, typer.Option("--name", help="This agent's name [default: the host name].")
        ] = None,
        label: Annotated[
            list[str], typer.Option("--label", help="KEY=VALUE, repeatable; devices inherit them.")
        ] = [],  # noqa: B006
        slots: Annotated[
            int, typer.Option("--slots", min=0, max=1024, help="Host slots to offer as devices.")
        ] = 1,
        token: Annotated[
            str | None,
            typer.Option("--token", envvar="TESTFLEET_TOKEN", help="An agent (or admin) token."),
        ] = None,
        cache_dir: Annotated[
            Path | None,
            typer.Option(
                "--cache-dir",
                help="Where test plan sources, environments and instance work go "
                "[default: $XDG_CACHE_HOME/testfleet or ~/.cache/testfleet].",
            ),
        ] = None,
        log_level: LOG_LEVEL = "info",
    ) -> None:
        """Run an agent: connect to the hub and run the tasks it gives this machine."""
        from testfleet.agent import Agent, AgentConfig, AgentRefused
        from testfleet.agent.config import default_cache_dir, default_name

        _logging(log_level)
        config = AgentConfig(
            hub_url=hub,
            name=name or default_name(),
            labels=_labels(label),
            slots=slots,
            token=token,
            cache_dir=cache_dir or default_cache_dir(),
        )
        try:
            config.websocket_url  # noqa: B018 - validates the URL
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--hub") from None
        agent = Agent(config)

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, agent.stop)
            await agent.run()

        try:
            asyncio.run(main())
        except AgentRefused as error:
            err.print(f"[red]error:[/red] the hub refused this agent: {error}")
            raise typer.Exit(1) from None

    @app.command("up")
    def up_command(
        host: HOST = "127.0.0.1",
        port: PORT = 8470,
        data_dir: DATA_DIR = None,
        auth: AUTH = None,
        insecure_no_auth: INSECURE = False,
        slots: Annotated[
            int, typer.Option("--slots", min=1, max=1024, help="Host slots of the local agent.")
        ] = 2,
        log_level: LOG_LEVEL = "warning",
    ) -> None:
        """Run a hub with the SQLite store and one local agent, in one command."""
        from testfleet.cli.up import run_up

        _logging(log_level)
        code = run_up(
            host=host,
            port=port,
            data_dir=data_dir,
            auth=auth,
            insecure_no_auth=insecure_no_auth,
            slots=slots,
            log_level=log_level,
        )
        raise typer.Exit(code)
