"""`testfleet up`: a hub and one local agent in one process, stopped together."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.console import Console
from sqlalchemy import Connection

from testfleet.agent import Agent, AgentConfig, AgentRefused
from testfleet.agent.config import default_name
from testfleet.agent.devices import ProviderError
from testfleet.cli import datadir
from testfleet.cli.serve import check_store
from testfleet.hub.config import HubConfig, default_data_dir
from testfleet.hub.server import build_server
from testfleet.protocol.wire import utcnow
from testfleet.store import tokens as token_store
from testfleet.store.db import Store

err = Console(stderr=True, soft_wrap=True)
LOCAL_AGENT_TOKEN = "local-agent"


def local_agent_name() -> str:
    """The name of `testfleet up`'s own agent."""
    return f"{default_name()}-local"


async def _prepare_tokens(config: HubConfig) -> tuple[str | None, str | None]:
    """With auth: a fresh token for the local agent, and a first admin token if none exists."""
    if not config.auth_enabled:
        return None, None

    def work(conn: Connection) -> tuple[str, str | None]:
        now = utcnow()
        token_store.revoke_by_name(conn, LOCAL_AGENT_TOKEN, now)
        _, agent_secret = token_store.create_token(
            conn,
            LOCAL_AGENT_TOKEN,
            "agent",
            now,
            created_by="testfleet up",
            agent_name=local_agent_name(),
        )
        admin_secret = None
        if not token_store.has_live_token(conn, "admin"):
            _, admin_secret = token_store.create_token(
                conn, "admin", "admin", now, created_by="testfleet up"
            )
        return agent_secret, admin_secret

    store = await Store.open(config.database_url)
    try:
        agent_secret, admin_secret = await store.write(work)
    finally:
        await store.close()
    return agent_secret, admin_secret


def _report_agent_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        err.print(f"[red]error:[/red] the local agent stopped: {task.exception()}")


def run_up(
    *,
    host: str,
    port: int,
    data_dir: Path | None,
    auth: bool | None,
    insecure_no_auth: bool,
    slots: int,
    log_level: str,
    providers: list[str] | None = None,
) -> int:
    """Serve until Ctrl-C or SIGTERM; returns the exit code."""
    config = HubConfig(
        host=host,
        port=port,
        data_dir=data_dir or default_data_dir(),
        auth=auth,
        insecure_no_auth=insecure_no_auth,
        local_agent=local_agent_name(),
    )
    try:
        config.check()
    except ValueError as error:
        err.print(f"[red]error:[/red] {error}")
        return 2
    url_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{url_host}:{port}"
    try:
        with datadir.hold(config.data_dir, url):
            return _serve(config, url, slots, log_level, list(providers or []))
    except datadir.DataDirBusy as error:
        err.print(f"[red]error:[/red] {error}")
        return 1


def _serve(config: HubConfig, url: str, slots: int, log_level: str, providers: list[str]) -> int:
    """Serve the hub and its local agent until stopped."""
    check_store(config.database_url, "--data-dir")
    agent_token, admin_token = asyncio.run(_prepare_tokens(config))
    try:
        agent = Agent(
            AgentConfig(
                hub_url=url,
                name=local_agent_name(),
                slots=slots,
                providers=providers,
                token=agent_token,
                cache_dir=config.data_dir / "cache",
            )
        )
    except ProviderError as error:
        err.print(f"[red]error:[/red] {error}")
        return 2
    server = build_server(config, log_level=log_level, on_exit=[agent.stop])

    async def main() -> int:
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                return 1
            await asyncio.sleep(0.05)
        running_agent = asyncio.create_task(agent.run())
        running_agent.add_done_callback(_report_agent_end)
        err.print(f"testfleet is up: open [bold]{url}/ui/[/bold]")
        err.print(f"API {url}/api/v1   API docs {url}/docs")
        err.print(
            f"data directory: {config.data_dir}   auth: "
            f"{'on' if config.auth_enabled else 'off'}   local agent: "
            f"{agent.config.name} with {slots} slot(s)"
            + (f" and provider(s) {', '.join(agent.config.providers)}" if providers else "")
        )
        if admin_token:
            err.print("first admin token (shown once; keep it):")
            print(admin_token, flush=True)
        err.print("Ctrl-C stops the hub and the agent.")
        await serving
        agent.stop()
        try:
            async with asyncio.timeout(10):
                await running_agent
        except (TimeoutError, AgentRefused):
            running_agent.cancel()
        return 0

    return asyncio.run(main())
