"""`testfleet job ...`: start, follow, inspect and manage jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from testfleet.cli import output
from testfleet.cli.context import async_hub_client, hub_client, json_wanted
from testfleet.cli.files import read_descriptor
from testfleet.cli.live import watch
from testfleet.cli.output import print_json, print_line, reporting_errors
from testfleet.cli.render import event_line, job_summary, job_tree, jobs_table
from testfleet.protocol.api import EventList, EventRecord, JobList, JobStatus, JobSummary
from testfleet.protocol.durations import parse_duration
from testfleet.protocol.states import JobState

job_app = typer.Typer(
    rich_markup_mode=None,
    help="Start, follow, inspect, stop and retry jobs.",
    no_args_is_help=True,
)

EVENT_PAGE = 500

JobId = Annotated[
    int, typer.Argument(help="The job's id.", min=1, show_default=False, metavar="JOB_ID")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table.")]
FollowFlag = Annotated[
    bool, typer.Option("--follow", "-f", help="Watch the job live until it ends.")
]


@job_app.command("start")
def start(
    ctx: typer.Context,
    file: Annotated[
        str,
        typer.Argument(
            help="The job descriptor, JSON or YAML; '-' reads it from stdin.",
            metavar="FILE",
            show_default=False,
        ),
    ],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="Override a descriptor parameter: NAME=VALUE (repeat for several).",
            metavar="NAME=VALUE",
            show_default=False,
        ),
    ] = None,
    follow: FollowFlag = False,
) -> None:
    """Start a job from a descriptor file and print its id.

    With --follow, watch it until it ends and exit 0 if it completed, 1 if it failed or was
    cancelled.
    """
    with reporting_errors():
        descriptor = read_descriptor(file)
        with hub_client(ctx) as client:
            job_id = client.start(descriptor.text, parse_params(param or []))
    if not follow:
        print_line(str(job_id))
        return
    _follow_and_exit(ctx, job_id)


@job_app.command("status")
def status(ctx: typer.Context, job_id: JobId, as_json: JsonFlag = False) -> None:
    """Show a job: its runs, tests, tasks (one per device) and steps."""
    with reporting_errors(), hub_client(ctx) as client:
        result = client.status(job_id)
    if json_wanted(ctx, as_json):
        print_json(result)
    else:
        output.stdout.print(job_tree(result))


@job_app.command("stop")
def stop(ctx: typer.Context, job_id: JobId) -> None:
    """Ask the hub to stop a job; its running steps are cancelled."""
    with reporting_errors(), hub_client(ctx) as client:
        answer = client.stop(job_id)
    print_line(f"job {answer.job_id}: stop requested, now {answer.state}")


@job_app.command("retry")
def retry(ctx: typer.Context, job_id: JobId, follow: FollowFlag = False) -> None:
    """Start a job again from the same descriptor and print the new job's id."""
    with reporting_errors(), hub_client(ctx) as client:
        new_id = client.retry(job_id)
    if not follow:
        print_line(str(new_id))
        return
    _follow_and_exit(ctx, new_id)


@job_app.command("list")
def list_jobs(
    ctx: typer.Context,
    state: Annotated[
        list[JobState] | None,
        typer.Option(
            "--state",
            "-s",
            help="Only jobs in this state (repeat for several).",
            metavar="STATE",
            show_default=False,
        ),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            "-t",
            help="Only jobs with this tag (repeat for several).",
            metavar="TAG",
            show_default=False,
        ),
    ] = None,
    requestor: Annotated[
        str | None, typer.Option(help="Only jobs started by this user.", metavar="USER")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Only jobs with this name.", metavar="NAME")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only jobs created at or after this time: RFC 3339 (UTC unless a zone is given) "
            "or an age such as 2h, 30m, 1d.",
            metavar="TIME",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            help="Only jobs created before this time (same forms as --since).", metavar="TIME"
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="Jobs per page.", min=1, metavar="N")] = 50,
    cursor: Annotated[
        str | None,
        typer.Option(
            help="Continue after a page: the cursor the previous page ended with.", metavar="CURSOR"
        ),
    ] = None,
    all_pages: Annotated[bool, typer.Option("--all", help="Fetch every page.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List jobs, newest first."""
    after = parse_when(since, "--since")
    before = parse_when(until, "--until")
    states, tags = state or [], tag or []
    with reporting_errors(), hub_client(ctx) as client:
        page = client.list(states, tags, requestor, name, after, before, limit, cursor)
        jobs: list[JobSummary] = list(page.jobs)
        while all_pages and page.next_cursor and page.jobs:
            page = client.list(
                states, tags, requestor, name, after, before, limit, page.next_cursor
            )
            jobs += page.jobs
    if all_pages:
        page = JobList(server_id=page.server_id, jobs=jobs)
    if json_wanted(ctx, as_json):
        print_json(page)
        return
    if not page.jobs:
        output.stderr.print("no jobs match", style="dim")
        return
    output.stdout.print(jobs_table(page.jobs))
    if page.next_cursor:
        output.stderr.print(
            f"more jobs: add --cursor {page.next_cursor} for the next page, or --all", style="dim"
        )


@job_app.command("events")
def events(
    ctx: typer.Context,
    job_id: JobId,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Keep printing events as they happen, until the job ends."
        ),
    ] = False,
    after: Annotated[
        int, typer.Option(help="Only events with ids above this.", min=0, metavar="ID")
    ] = 0,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print JSON: the event list, or one event per line with --follow."
        ),
    ] = False,
) -> None:
    """Print a job's events (state changes, steps, log lines ...)."""
    as_json = json_wanted(ctx, as_json)
    if follow:
        try:
            with (
                reporting_errors(),
                hub_client(ctx) as client,
                client.follow(job_id, after) as stream,
            ):
                for event in stream:
                    print_line(event.model_dump_json() if as_json else event_line(event))
        except KeyboardInterrupt:
            raise typer.Exit(output.EXIT_INTERRUPTED) from None
        return
    with reporting_errors(), hub_client(ctx) as client:
        page = _all_events(client.events, job_id, after)
    if json_wanted(ctx, as_json):
        print_json(page)
        return
    if not page.events:
        output.stderr.print(f"job {job_id} has no events after {after}", style="dim")
    for event in page.events:
        print_line(event_line(event))


def parse_params(pairs: list[str]) -> dict[str, str]:
    """`["a=1", "b=x"]` -> `{"a": "1", "b": "x"}`."""
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"{pair!r}: give NAME=VALUE", param_hint="--param")
        params[name.strip()] = value
    return params


def parse_when(value: str | None, option: str) -> datetime | None:
    """An RFC 3339 time (naive means UTC) or an age such as "2h" (that long ago)."""
    if value is None:
        return None
    text = value.strip()
    if text and text[-1].isalpha() and text[-1] not in "Zz":
        try:
            return datetime.now(UTC).replace(microsecond=0) - _seconds(text)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint=option) from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is neither an RFC 3339 time (2024-05-01T12:00:00Z) nor an age (2h)",
            param_hint=option,
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _seconds(text: str) -> timedelta:
    return timedelta(seconds=parse_duration(text))


def _all_events(
    fetch: Callable[[int, int, int | None], EventList], job_id: int, after: int
) -> EventList:
    collected: list[EventRecord] = []
    server_id = ""
    while True:
        page = fetch(job_id, after, EVENT_PAGE)
        server_id = page.server_id
        collected += page.events
        if not page.events or page.next_after <= after:
            return EventList(server_id=server_id, events=collected, next_after=after)
        after = page.next_after


def _follow_and_exit(ctx: typer.Context, job_id: int) -> NoReturn:
    console = output.stdout
    if not console.is_terminal:
        print_line(f"job {job_id} started")
    try:
        with reporting_errors():
            final = asyncio.run(_watch(ctx, job_id, console))
    except KeyboardInterrupt:
        output.print_warning(
            f"stopped following job {job_id}; it keeps running "
            f"('testfleet job stop {job_id}' stops it)"
        )
        raise typer.Exit(output.EXIT_INTERRUPTED) from None
    console.print(job_summary(final))
    raise typer.Exit(output.EXIT_OK if final.state == JobState.COMPLETED else output.EXIT_FAILED)


async def _watch(ctx: typer.Context, job_id: int, console: Console) -> JobStatus:
    async with async_hub_client(ctx) as client:
        return await watch(client, job_id, console)
