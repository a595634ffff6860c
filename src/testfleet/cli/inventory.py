"""`testfleet agents`, `testfleet devices` and `testfleet version`."""

from __future__ import annotations

from typing import Annotated

import typer

from testfleet import __version__
from testfleet.cli import output
from testfleet.cli.context import hub_client, hub_options
from testfleet.cli.output import UserInputError, print_json, reporting_errors
from testfleet.cli.render import agents_table, devices_table
from testfleet.client import ClientError
from testfleet.protocol.api import VersionInfo
from testfleet.protocol.version import API_VERSION

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table.")]


def agents(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the agents the hub knows, online or not."""
    with reporting_errors(), hub_client(ctx) as client:
        result = client.agents()
    if as_json:
        print_json(result)
    elif not result.agents:
        output.stderr.print("no agents have connected to this hub", style="dim")
    else:
        output.stdout.print(agents_table(result.agents))


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{value!r} is not KEY=VALUE", param_hint=option)
        pairs[key] = wanted
    return pairs


def devices(
    ctx: typer.Context,
    capability: Annotated[
        list[str], typer.Option("--capability", help="KEY=VALUE it offers (repeatable).")
    ] = [],  # noqa: B006
    label: Annotated[
        list[str], typer.Option("--label", help="KEY=VALUE it or its agent carries (repeatable).")
    ] = [],  # noqa: B006
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent's.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="free, busy or offline.")] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="host, browser, phone, webdriver ...")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List the devices of all agents: host slots, browsers, phones."""
    caps, labels = _pairs(capability, "--capability"), _pairs(label, "--label")
    with reporting_errors(), hub_client(ctx) as client:
        result = client.devices(
            capabilities=caps, labels=labels, agent=agent, state=state, kind=kind
        )
    if as_json:
        print_json(result)
    elif not result.devices:
        output.stderr.print("no devices", style="dim")
    else:
        output.stdout.print(devices_table(result.devices))


def version(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Show this client's version and API version, and the hub's."""
    url = hub_options(ctx).url
    try:
        with hub_client(ctx) as client:
            hub = client.version()
    except (ClientError, UserInputError) as error:
        _print_version(None, as_json, url)
        raise typer.Exit(output.report(error)) from None
    _print_version(hub, as_json, url)
    if hub.version != API_VERSION:
        output.print_warning(f"the hub speaks API version {hub.version}, this client {API_VERSION}")


def _print_version(hub: VersionInfo | None, as_json: bool, url: str) -> None:
    if as_json:
        print_json(
            {
                "client": {"package_version": __version__, "api_version": API_VERSION},
                "hub": None if hub is None else {**hub.model_dump(), "url": url},
            }
        )
        return
    output.print_line(f"client  testfleet {__version__}, API version {API_VERSION}")
    if hub is not None:
        output.print_line(
            f"hub     testfleet {hub.package_version}, API version {hub.version}, "
            f"server {hub.server_id} at {url}"
        )


def register(app: typer.Typer) -> None:
    """Add `agents`, `devices` and `version` to `app`."""
    app.command("agents")(agents)
    app.command("devices")(devices)
    app.command("version")(version)
