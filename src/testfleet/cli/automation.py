"""`testfleet webhook ...` and `testfleet schedule ...`."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from testfleet.cli import output
from testfleet.cli.context import hub_client, json_wanted
from testfleet.cli.files import read_descriptor
from testfleet.cli.jobs import parse_params
from testfleet.cli.output import UserInputError, print_json, print_line, reporting_errors
from testfleet.cli.render import local_time, new_table, state_text
from testfleet.protocol.automation import ScheduleCreate, ScheduleUpdate, WebhookCreate

webhook_app = typer.Typer(
    rich_markup_mode=None, help="Register webhooks and see their deliveries.", no_args_is_help=True
)
schedule_app = typer.Typer(
    rich_markup_mode=None, help="Start descriptors on a cron timetable.", no_args_is_help=True
)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table.")]
Id = Annotated[int, typer.Argument(min=1, metavar="ID", show_default=False)]
M = TypeVar("M", bound=BaseModel)


def checked(model: type[M], data: dict[str, Any]) -> M:
    """`data` as `model`, or a UserInputError naming each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = [f"--{'.'.join(map(str, e['loc'])) or '?'}: {e['msg']}" for e in error.errors()]
        raise UserInputError("; ".join(problems)) from None


@webhook_app.command("add")
def webhook_add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="Where deliveries are POSTed.", metavar="URL")],
    event: Annotated[
        list[str],
        typer.Option(
            "--event",
            "-e",
            help="job.finished, job.failed, device.offline or agent.lost (repeat).",
            metavar="EVENT",
        ),
    ],
    secret: Annotated[
        str | None, typer.Option(help="Signing secret (16+ characters) [default: generated].")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Only jobs with one of these tags.")
    ] = None,
    description: Annotated[str, typer.Option(help="What it is for.")] = "",
) -> None:
    """Register a webhook; prints its id and secret (shown this once)."""
    with reporting_errors():
        body = checked(
            WebhookCreate,
            {
                "url": url,
                "events": event,
                "secret": secret,
                "tags": tag or [],
                "description": description,
            },
        )
        with hub_client(ctx) as client:
            created = client.create_webhook(body)
    if json_wanted(ctx):
        print_json(created)
        return
    print_line(f"webhook {created.webhook_id}: secret {created.secret}")


@webhook_app.command("list")
def webhook_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List the webhooks."""
    with reporting_errors(), hub_client(ctx) as client:
        found = client.webhooks()
    if json_wanted(ctx, as_json):
        print_json(found)
    elif not found.webhooks:
        output.stderr.print("no webhooks", style="dim")
    else:
        table = new_table("id", "url", "events", "tags", "active", "created")
        for hook in found.webhooks:
            table.add_row(
                str(hook.webhook_id),
                hook.url,
                ",".join(hook.events),
                ",".join(hook.tags),
                "yes" if hook.active else "no",
                local_time(hook.created_at),
            )
        output.stdout.print(table)


@webhook_app.command("deliveries")
def webhook_deliveries(
    ctx: typer.Context,
    webhook_id: Id,
    limit: Annotated[int, typer.Option(min=1, max=500, metavar="N")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """A webhook's deliveries, newest first, with their last attempt."""
    with reporting_errors(), hub_client(ctx) as client:
        found = client.deliveries(webhook_id, limit)
    if json_wanted(ctx, as_json):
        print_json(found)
    elif not found.deliveries:
        output.stderr.print("no deliveries yet", style="dim")
    else:
        table = new_table("id", "event", "state", "attempts", "last answer", "next attempt")
        for item in found.deliveries:
            last = item.attempt_log[-1] if item.attempt_log else None
            answer = "" if last is None else (last.error or str(last.status_code))
            table.add_row(
                str(item.delivery_id),
                item.event,
                state_text("passed" if item.state == "delivered" else item.state),
                str(item.attempts),
                answer[:60],
                local_time(item.next_attempt_at),
            )
        output.stdout.print(table)


@webhook_app.command("ping")
def webhook_ping(ctx: typer.Context, webhook_id: Id) -> None:
    """Queue a test delivery (event 'ping')."""
    with reporting_errors(), hub_client(ctx) as client:
        client.ping_webhook(webhook_id)
    print_line(f"ping queued for webhook {webhook_id}")


@webhook_app.command("delete")
def webhook_delete(ctx: typer.Context, webhook_id: Id) -> None:
    """Remove a webhook and its deliveries."""
    with reporting_errors(), hub_client(ctx) as client:
        client.delete_webhook(webhook_id)
    print_line(f"webhook {webhook_id} deleted")


@schedule_app.command("add")
def schedule_add(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="The job descriptor ('-': stdin).", metavar="FILE")],
    cron: Annotated[str, typer.Option("--cron", help="Five fields, e.g. '0 2 * * *'.")],
    tz: Annotated[str, typer.Option("--tz", help="An IANA time zone.")] = "UTC",
    name: Annotated[
        str | None, typer.Option(help="The schedule's name [default: the descriptor's].")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="NAME=VALUE overrides (repeat).", metavar="NAME=VALUE"),
    ] = None,
    missed: Annotated[
        str, typer.Option(help="A fire missed while no hub ran: once (run it at start) or skip.")
    ] = "once",
) -> None:
    """Start a descriptor on a timetable; prints the schedule's id and next fires."""
    with reporting_errors():
        descriptor = read_descriptor(file)
        body = checked(
            ScheduleCreate,
            {
                "name": name or str(descriptor.data.get("name", "schedule")),
                "cron": cron,
                "timezone": tz,
                "descriptor": descriptor.data,
                "params": parse_params(param or []),
                "missed": missed,
            },
        )
        with hub_client(ctx) as client:
            created = client.create_schedule(body)
    if json_wanted(ctx):
        print_json(created)
        return
    print_line(f"schedule {created.schedule_id} ({created.name})")
    for fire in created.next_fires:
        print_line(f"  next: {local_time(fire)}")


@schedule_app.command("list")
def schedule_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List schedules with their next fire."""
    with reporting_errors(), hub_client(ctx) as client:
        found = client.schedules()
    if json_wanted(ctx, as_json):
        print_json(found)
    elif not found.schedules:
        output.stderr.print("no schedules", style="dim")
    else:
        table = new_table("id", "name", "cron", "zone", "enabled", "next fire", "last job")
        for item in found.schedules:
            table.add_row(
                str(item.schedule_id),
                item.name,
                item.cron,
                item.timezone,
                "yes" if item.enabled else "no",
                local_time(item.next_fires[0] if item.next_fires else None),
                str(item.last_job_id or ""),
            )
        output.stdout.print(table)


@schedule_app.command("pause")
def schedule_pause(ctx: typer.Context, schedule_id: Id) -> None:
    """Stop a schedule from firing (until resumed)."""
    with reporting_errors(), hub_client(ctx) as client:
        client.update_schedule(schedule_id, ScheduleUpdate(enabled=False))
    print_line(f"schedule {schedule_id} paused")


@schedule_app.command("resume")
def schedule_resume(ctx: typer.Context, schedule_id: Id) -> None:
    """Let a paused schedule fire again (from its next fire on)."""
    with reporting_errors(), hub_client(ctx) as client:
        client.update_schedule(schedule_id, ScheduleUpdate(enabled=True))
    print_line(f"schedule {schedule_id} resumed")


@schedule_app.command("run")
def schedule_run(ctx: typer.Context, schedule_id: Id) -> None:
    """Start a schedule's job now; prints the job's id."""
    with reporting_errors(), hub_client(ctx) as client:
        print_line(str(client.run_schedule(schedule_id).job_id))


@schedule_app.command("delete")
def schedule_delete(ctx: typer.Context, schedule_id: Id) -> None:
    """Remove a schedule (its jobs stay)."""
    with reporting_errors(), hub_client(ctx) as client:
        client.delete_schedule(schedule_id)
    print_line(f"schedule {schedule_id} deleted")
