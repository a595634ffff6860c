"""`testfleet hub` and `testfleet up` (and what the long-running commands share; `testfleet
agent` is in `agent_command.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
PROVIDERS = Annotated[
    list[str],
    typer.Option(
        "--provider",
        help="A device provider, NAME[:OPTIONS], repeatable: chromium[:count=N,...] (Chromium "
        "with chromedriver), static:FILE (WebDriver endpoints from YAML/JSON), "
        "android[:appium=URL] (phones from `adb devices -l`). See docs/devices.md.",
        metavar="NAME[:OPTIONS]",
    ),
]


def setup_logging(level: str) -> None:
    """Log to stderr at `level`."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def check_store(url: str, param: str) -> None:
    """Open the store once (bringing its schema up to date); on failure say in one line what
    failed and exit 1 (2 for a URL that is not one)."""
    from testfleet.store.db import Store, StoreUrlError, safe_url

    async def open_and_close() -> None:
        store = await Store.open(url)
        await store.close()

    try:
        asyncio.run(open_and_close())
    except StoreUrlError as error:
        err.print(f"[red]error:[/red] {param}: {error}")
        raise typer.Exit(2) from None
    except Exception as error:
        err.print(f"[red]error:[/red] cannot open the store at {safe_url(url)}: {describe(error)}")
        raise typer.Exit(1) from None


def describe(error: BaseException) -> str:
    """An error as one line: the database driver's own message where there is one."""
    cause = getattr(error, "orig", None) or error
    cause = cause.__cause__ or cause  # the driver's own exception, where wrapped
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def parse_labels(values: list[str]) -> dict[str, str]:
    """`--label KEY=VALUE` values as a dict; a bad one is a usage error."""
    labels: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{value!r}: a label is KEY=VALUE", param_hint="--label")
        labels[key] = val
    return labels


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str, option: str) -> int:
    """`500M` -> bytes (K, M, G, T are powers of 1024; a B after them is allowed)."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = value.rstrip("KMGT"), value[len(value.rstrip("KMGT")) :]
    try:
        size = int(float(number) * _UNITS[unit])
    except (ValueError, KeyError):
        raise typer.BadParameter(
            f"{text!r}: give a size such as 500M or 5G", param_hint=option
        ) from None
    if size <= 0:
        raise typer.BadParameter(f"{text!r}: the size must be positive", param_hint=option)
    return size


def _retain_tags(values: list[str]) -> dict[str, float]:
    tags: dict[str, float] = {}
    for value in values:
        tag, sep, days = value.partition("=")
        try:
            tags[tag] = float(days)
        except ValueError:
            tags[tag] = -1.0
        if not sep or not tag or tags[tag] <= 0:
            raise typer.BadParameter(f"{value!r}: give TAG=DAYS", param_hint="--retain-tag")
    return tags


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
        hub_timeout: Annotated[
            float,
            typer.Option(
                "--hub-timeout",
                help="Seconds another hub may be silent before its agents are declared lost "
                "(several hubs on PostgreSQL).",
            ),
        ] = 30.0,
        developer_timeout: Annotated[
            float,
            typer.Option(
                "--developer-timeout",
                min=0.1,
                help="Seconds a developer-mode session lives with none of its developer's "
                "tabs open; then it ends and the job's paused tasks go on.",
            ),
        ] = 300.0,
        session_request_timeout: Annotated[
            float,
            typer.Option(
                "--session-request-timeout",
                min=0.1,
                help="Seconds a new WebDriver session waits in the queue for a device.",
            ),
        ] = 300.0,
        session_idle_max: Annotated[
            float,
            typer.Option(
                "--session-idle-max",
                min=1,
                help="The longest newCommandTimeout a WebDriver client may ask for (seconds; "
                "60 when it asks for none).",
            ),
        ] = 3600.0,
        session_history_days: Annotated[
            float,
            typer.Option(
                "--session-history-days",
                min=0.001,
                help="Days an ended WebDriver session's commands and screenshot are kept.",
            ),
        ] = 30.0,
        max_running_jobs: Annotated[
            int,
            typer.Option(
                "--max-running-jobs",
                min=0,
                help="Jobs this hub runs at once; more wait queued (for it or other hubs on "
                "the same PostgreSQL). 0: serve the API and agents only.",
            ),
        ] = 2000,
        metrics_public: Annotated[
            bool,
            typer.Option(
                "--metrics-public",
                help="With auth: serve /metrics without a token (for a Prometheus that "
                "cannot send one).",
            ),
        ] = False,
        retain_days: Annotated[
            float | None,
            typer.Option(
                "--retain-days",
                help="Delete finished jobs (with events and artifacts) this many days after "
                "they end [default: keep them].",
                show_default=False,
                min=0.001,
            ),
        ] = None,
        retain_tag: Annotated[
            list[str],
            typer.Option(
                "--retain-tag",
                help="TAG=DAYS, repeatable: jobs with this tag are kept that long (the longest "
                "of their tags' wins over --retain-days).",
                show_default=False,
            ),
        ] = [],  # noqa: B006
        artifact_dir: Annotated[
            Path | None,
            typer.Option(
                "--artifact-dir",
                help="Where artifacts are stored [default: DATA_DIR/artifacts]; with several "
                "hubs, a directory they share.",
                show_default=False,
            ),
        ] = None,
        max_artifact_size: Annotated[
            str, typer.Option("--max-artifact-size", help="Largest artifact, e.g. 500M, 5G.")
        ] = "5G",
        max_job_artifacts: Annotated[
            str,
            typer.Option("--max-job-artifacts", help="Largest total of one job's artifacts."),
        ] = "20G",
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
        """Run the hub: the API, the web UI (at /ui/), the job manager, the WebDriver gateway, the
        sync service and the agents' endpoint."""
        from testfleet.cli import datadir
        from testfleet.hub.config import HubConfig, default_data_dir
        from testfleet.hub.server import build_server

        setup_logging(log_level)
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
            hub_timeout=hub_timeout,
            max_running_jobs=max_running_jobs,
            metrics_public=metrics_public,
            retain_days=retain_days,
            retain_tags=_retain_tags(retain_tag),
            artifact_dir=artifact_dir,
            max_artifact_size=parse_size(max_artifact_size, "--max-artifact-size"),
            max_job_artifacts=parse_size(max_job_artifacts, "--max-job-artifacts"),
            session_request_timeout=session_request_timeout,
            session_idle_max=session_idle_max,
            session_history_days=session_history_days,
            developer_timeout=developer_timeout,
            local_agent=local_agent,
        )
        try:
            server = build_server(config, log_level=log_level)
        except ValueError as error:
            err.print(f"[red]error:[/red] {error}")
            raise typer.Exit(2) from None
        url = f"http://{host}:{port}"
        held = datadir.hold(config.data_dir, url) if db is None else contextlib.nullcontext()
        try:
            with held:
                check_store(config.database_url, "--db")
                err.print(
                    f"testfleet hub on [bold]{url}/ui/[/bold] "
                    f"(auth {'on' if config.auth_enabled else 'off'}; API docs at /docs)"
                )
                server.run()
        except datadir.DataDirBusy as error:
            err.print(f"[red]error:[/red] {error}")
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
        provider: PROVIDERS = [],  # noqa: B006
        log_level: LOG_LEVEL = "warning",
    ) -> None:
        """Run a hub with the SQLite store and one local agent, in one command; the web UI is at
        the address it prints first."""
        from testfleet.cli.up import run_up

        setup_logging(log_level)
        code = run_up(
            host=host,
            port=port,
            data_dir=data_dir,
            auth=auth,
            insecure_no_auth=insecure_no_auth,
            slots=slots,
            providers=provider,
            log_level=log_level,
        )
        raise typer.Exit(code)
