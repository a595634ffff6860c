"""`testfleet agent`: connect this machine to a hub and run the tasks it is given."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from testfleet.cli.serve import LOG_LEVEL, PROVIDERS, err, parse_labels, setup_logging


def register(app: typer.Typer) -> None:
    """Add `agent` to the command line."""

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
        provider: PROVIDERS = [],  # noqa: B006
        token: Annotated[
            str | None,
            typer.Option("--token", envvar="TESTFLEET_TOKEN", help="An agent (or admin) token."),
        ] = None,
        work_dir: Annotated[
            Path | None,
            typer.Option(
                "--work-dir",
                help="Where each task gets its working directory "
                "[default: TMPDIR/testfleet-agent-NAME].",
                show_default=False,
            ),
        ] = None,
        keep_work: Annotated[
            bool,
            typer.Option("--keep-work", help="Keep tasks' working directories after they end."),
        ] = False,
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
        from testfleet.agent.devices import ProviderError

        setup_logging(log_level)
        config = AgentConfig(
            hub_url=hub,
            name=name or default_name(),
            labels=parse_labels(label),
            slots=slots,
            providers=provider,
            token=token,
            work_dir=work_dir,
            keep_work=keep_work,
            cache_dir=cache_dir or default_cache_dir(),
        )
        try:
            config.websocket_url  # noqa: B018 - validates the URL
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--hub") from None
        try:
            agent = Agent(config)
        except ProviderError as error:
            raise typer.BadParameter(str(error), param_hint="--provider") from None

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
