"""The global options (--hub, --token, --timeout) and the clients built from them."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field

import typer

from testfleet.cli.output import UserInputError
from testfleet.client import DEFAULT_HUB, DEFAULT_TIMEOUT, AsyncClient, Client

HUB_ENV = "TESTFLEET_HUB"
TOKEN_ENV = "TESTFLEET_TOKEN"
TIMEOUT_ENV = "TESTFLEET_TIMEOUT"


def _requestor() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


@dataclass(frozen=True)
class HubOptions:
    """Where the hub is and how to talk to it."""

    url: str = DEFAULT_HUB
    token: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    requestor: str | None = field(default_factory=_requestor)
    json: bool = False

    @classmethod
    def from_env(cls) -> HubOptions:
        """The options as the environment sets them (when no callback stored any)."""
        return cls(os.environ.get(HUB_ENV) or DEFAULT_HUB, os.environ.get(TOKEN_ENV) or None)


def hub_options(ctx: typer.Context) -> HubOptions:
    """The options the `testfleet` callback stored, or those of the environment."""
    found = ctx.find_object(HubOptions)
    return found if found is not None else HubOptions.from_env()


def json_wanted(ctx: typer.Context, flag: bool = False) -> bool:
    """True if this command line asked for JSON (the command's --json or the global one)."""
    return flag or hub_options(ctx).json


def hub_client(ctx: typer.Context) -> Client:
    """A blocking client for the hub of this command line (use it as a context manager)."""
    options = hub_options(ctx)
    try:
        return Client(options.url, options.token, options.timeout, requestor=options.requestor)
    except ValueError as error:
        raise UserInputError(f"{error} (from --hub or {HUB_ENV})") from None


def async_hub_client(ctx: typer.Context) -> AsyncClient:
    """An asyncio client for the hub of this command line."""
    options = hub_options(ctx)
    try:
        return AsyncClient(options.url, options.token, options.timeout, requestor=options.requestor)
    except ValueError as error:
        raise UserInputError(f"{error} (from --hub or {HUB_ENV})") from None
