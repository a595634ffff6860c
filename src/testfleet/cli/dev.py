"""`testfleet dev`: developer mode from the terminal (the browser's developer panel, as lines).

`attach` holds the job, sets where it pauses, prints what happens, and reads commands from
standard input: `resume [--ignore-failure]`, `quit [--cancel]`, `status`, `ls`, `log`,
`run COMMAND`, `pause-at STEP`. `resume` and `quit` also work on their own, for scripts.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from typing import Annotated, Any

import typer
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from testfleet.cli import output
from testfleet.cli.context import HubOptions, hub_options
from testfleet.cli.output import EXIT_FAILED
from testfleet.protocol.version import REQUESTOR_HEADER

dev_app = typer.Typer(help="Developer mode: hold a running job, pause it at a step, resume.")
JobArg = Annotated[int, typer.Argument(min=1, help="The job's id.")]
REFUSALS = {"developer_session_held", "job_not_running", "unauthenticated", "invalid_token"}
HELP = (
    "commands: resume [--ignore-failure] | quit [--cancel] | status | ls | log | "
    "run COMMAND | pause-at STEP | pause-on-failure on|off | pause-on-next on|off"
)


def ws_url(options: HubOptions, job_id: int) -> str:
    """The job's developer-mode WebSocket on the hub of `options`."""
    base = options.url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    return f"{base}/api/v1/jobs/{job_id}/developer/ws"


def _headers(options: HubOptions) -> dict[str, str]:
    headers = {}
    if options.token:
        headers["Authorization"] = f"Bearer {options.token}"
    if options.requestor:
        headers[REQUESTOR_HEADER] = options.requestor
    return headers


def describe(message: dict[str, Any]) -> str:
    """One line for a message from the hub."""
    kind, what, data = message.get("type"), message.get("what"), message.get("data") or {}
    if what == "status":
        paused = data.get("test_execution_paused") or "no"
        return (
            f"status: job {data.get('job_state')}, at {data.get('current_test_full_name')}, "
            f"paused: {paused}, pause at: {data.get('pause_test_name')}, "
            f"on failure: {data.get('pause_on_failure')}, "
            f"on next: {data.get('pause_on_next_command')}, "
            f"held by {data.get('developer_name')} "
            f"({data.get('developer_session_tab_count')} tab(s))"
        )
    if what == "command_output":
        return str(data.get("text", "")).rstrip("\n")
    if what == "listing":
        names = [f"{e['name']}{'/' if e.get('kind') == 'dir' else ''}" for e in data["entries"]]
        return f"{data.get('directory')}: " + "  ".join(names)
    if what == "log":
        return "\n".join(data.get("lines", []))
    text = data.get("message") or data.get("reason") or ""
    extra = {k: v for k, v in data.items() if k not in ("message",)} if not text else {}
    return f"{kind}: {what}" + (f": {text}" if text else f" {json.dumps(extra)}" if extra else "")


def parse_line(line: str) -> dict[str, Any] | str | None:
    """A typed line as a command (None: nothing; a string: what is wrong)."""
    words = line.strip().split(maxsplit=1)
    if not words:
        return None
    head, rest = words[0], words[1] if len(words) > 1 else ""
    switch = {"on": True, "off": False}
    match head:
        case "resume":
            options = {"ignore_failure": "--ignore-failure" in rest.split()}
            return {"cmd": "resume_test_execution", "options": options}
        case "quit":
            return {"cmd": "quit_development_session", "cancel_job": "--cancel" in rest.split()}
        case "status":
            return {"cmd": "status"}
        case "ls":
            return {"cmd": "list_directory"}
        case "log":
            return {"cmd": "log", "lines": 50}
        case "run" if rest:
            return {"cmd": "run_command", "command": rest}
        case "pause-at":
            return {"cmd": "set_pause_at_test", "name": rest or None}
        case "pause-on-failure" | "pause-on-next" if rest in switch:
            cmd = (
                "set_pause_on_failure"
                if head == "pause-on-failure"
                else "set_pause_on_next_command"
            )
            return {"cmd": cmd, "flag": switch[rest]}
    return HELP


async def _session(
    options: HubOptions, job_id: int, first: list[dict[str, Any]], interactive: bool
) -> int:
    try:
        async with connect(
            ws_url(options, job_id), additional_headers=_headers(options), open_timeout=15
        ) as socket:
            return await _converse(socket, first, interactive)
    except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as error:
        output.stderr.print(f"cannot reach {options.url}: {error}", style="red")
        return EXIT_FAILED


async def _converse(
    socket: ClientConnection, first: list[dict[str, Any]], interactive: bool
) -> int:
    lines: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def pump() -> None:  # a daemon thread: a blocked read never holds up the exit
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, "")

    async def read_stdin() -> None:
        threading.Thread(target=pump, name="dev-stdin", daemon=True).start()
        while True:
            line = await lines.get()
            if not line:
                return
            parsed = parse_line(line)
            if isinstance(parsed, str):
                output.stderr.print(parsed)
            elif parsed is not None:
                await socket.send(json.dumps(parsed))

    code = 0
    reader: asyncio.Task[None] | None = None
    answered = 0
    try:
        async for raw in socket:
            message = json.loads(raw)
            what = message.get("what")
            style = {"error": "red", "warning": "yellow"}.get(message.get("type"))
            output.stdout.print(describe(message), style=style, markup=False, highlight=False)
            if what in REFUSALS:
                return EXIT_FAILED
            if what in ("session_started", "session_joined", "read_only") and reader is None:
                for command in first:
                    await socket.send(json.dumps(command))
                if interactive:
                    output.stderr.print(HELP, style="dim")
                    reader = asyncio.create_task(read_stdin())
                elif not first:
                    return 0
            elif not interactive and what in (
                "resuming",
                "not_paused",
                "session_ended",
                "no_session",
            ):
                answered += 1
                code = 0 if what in ("resuming", "session_ended") else EXIT_FAILED
                if answered >= len(first):
                    return code
    except ConnectionClosed:
        pass
    finally:
        if reader is not None:
            reader.cancel()
    return code


@dev_app.command()
def attach(
    ctx: typer.Context,
    job_id: JobArg,
    pause_at: Annotated[
        str | None, typer.Option("--pause-at", help="Pause before the step of this name.")
    ] = None,
    pause_on_failure: Annotated[
        bool, typer.Option("--pause-on-failure", help="Pause after a step that failed.")
    ] = False,
    pause_on_next: Annotated[
        bool, typer.Option("--pause-on-next", help="Pause at every step boundary.")
    ] = False,
) -> None:
    """Hold a running job in developer mode and follow it; type commands (resume, quit,
    status, ls, log, run COMMAND) on standard input. Ctrl-C (or end of input) leaves the
    session open for --developer-timeout; `quit` ends it."""
    first: list[dict[str, Any]] = []
    if pause_at:
        first.append({"cmd": "set_pause_at_test", "name": pause_at})
    if pause_on_failure:
        first.append({"cmd": "set_pause_on_failure", "flag": True})
    if pause_on_next:
        first.append({"cmd": "set_pause_on_next_command", "flag": True})
    first.append({"cmd": "status"})
    try:
        code = asyncio.run(_session(hub_options(ctx), job_id, first, interactive=True))
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


@dev_app.command()
def resume(
    ctx: typer.Context,
    job_id: JobArg,
    ignore_failure: Annotated[
        bool, typer.Option("--ignore-failure", help="Go on after a failed step.")
    ] = False,
) -> None:
    """Resume a job you hold in developer mode (exit 1 if it was not paused)."""
    command = {"cmd": "resume_test_execution", "options": {"ignore_failure": ignore_failure}}
    raise typer.Exit(asyncio.run(_session(hub_options(ctx), job_id, [command], False)))


@dev_app.command("quit")
def quit_session(
    ctx: typer.Context,
    job_id: JobArg,
    cancel_job: Annotated[
        bool, typer.Option("--cancel-job", help="Cancel the job instead of letting it run on.")
    ] = False,
) -> None:
    """End your developer session of a job: it runs on (or is cancelled)."""
    command = {"cmd": "quit_development_session", "cancel_job": cancel_job}
    raise typer.Exit(asyncio.run(_session(hub_options(ctx), job_id, [command], False)))
