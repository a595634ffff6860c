"""`testfleet token create|list|revoke`."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

tokens_app = typer.Typer(
    rich_markup_mode=None, help="Create, list and revoke API tokens.", no_args_is_help=True
)
err = Console(stderr=True, soft_wrap=True)
ROLES = ("admin", "operator", "viewer", "agent")
AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@tokens_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Who the token is for (the requestor).")],
    role: Annotated[str, typer.Option("--role", help="admin, operator, viewer or agent.")],
    agent: Annotated[
        str | None,
        typer.Option(
            "--agent",
            help="For --role agent: the one agent name the token may register as (a live "
            "token for that name is revoked). Without it, the token is bound to the first "
            "name it registers with.",
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="Database URL of the hub's store [default: SQLite in the data dir]."
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="The hub's data directory (for the default SQLite store)."),
    ] = None,
) -> None:
    """Create a token directly in the store (how the first admin token is made).

    Prints the token alone on stdout; it is shown only this once.
    """
    from testfleet.hub.config import default_data_dir
    from testfleet.protocol.wire import utcnow
    from testfleet.store import tokens as token_store
    from testfleet.store.db import Store, StoreUrlError, sqlite_url

    if role not in ROLES:
        raise typer.BadParameter(
            f"{role!r} is not a role; use one of {', '.join(ROLES)}", param_hint="--role"
        )
    if not name.strip() or len(name) > 100:
        raise typer.BadParameter("a name is 1-100 characters", param_hint="--name")
    if agent is not None and role != "agent":
        raise typer.BadParameter("--agent is only for --role agent", param_hint="--agent")
    if agent is not None and not AGENT_NAME.fullmatch(agent):
        raise typer.BadParameter(
            "an agent name is 1-100 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit",
            param_hint="--agent",
        )
    url = db or sqlite_url(data_dir or default_data_dir())

    async def main() -> str:
        store = await Store.open(url)
        try:
            _, secret = await store.write(
                token_store.create_token,
                name,
                role,
                utcnow(),
                created_by="testfleet token create",
                agent_name=agent,
            )
        finally:
            await store.close()
        return secret

    try:
        secret = asyncio.run(main())
    except StoreUrlError as error:
        raise typer.BadParameter(str(error), param_hint="--db") from None
    except OSError as error:
        err.print(f"[red]error:[/red] cannot open the store at {url}: {error}")
        raise typer.Exit(1) from None
    print(secret)


@tokens_app.command("list")
def list_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
) -> None:
    """List the hub's tokens (never their secrets); needs an admin token."""
    from testfleet.cli.context import hub_client, json_wanted
    from testfleet.cli.output import print_json, reporting_errors, stdout
    from testfleet.cli.render import local_time, new_table

    with reporting_errors(), hub_client(ctx) as client:
        result = client.list_tokens()
    if json_wanted(ctx, as_json):
        print_json(result)
        return
    if not result.tokens:
        err.print("no tokens", style="dim")
        return
    table = new_table("id", "name", "role", "agent", "created", "by", "revoked")
    for token in result.tokens:
        table.add_row(
            str(token.token_id),
            token.name,
            token.role,
            token.agent or "",
            local_time(token.created_at),
            token.created_by or "",
            local_time(token.revoked_at) if token.revoked_at else "",
        )
    stdout.print(table)


@tokens_app.command("revoke")
def revoke_command(
    ctx: typer.Context,
    token_id: Annotated[int, typer.Argument(help="The token's id (see `token list`).")],
) -> None:
    """Revoke a token at once; needs an admin token."""
    from testfleet.cli.context import hub_client
    from testfleet.cli.output import reporting_errors

    with reporting_errors(), hub_client(ctx) as client:
        client.revoke_token(token_id)
    err.print(f"token {token_id} revoked")
