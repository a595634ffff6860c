"""`testfleet job artifacts|tests|delete`: what a job left behind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from testfleet.cli import output
from testfleet.cli.context import hub_client, json_wanted
from testfleet.cli.logs import logs
from testfleet.cli.output import UserInputError, print_json, reporting_errors
from testfleet.cli.render import duration_text, human_size, local_time, new_table, state_text
from testfleet.protocol.results import ArtifactInfo, TestCaseInfo

JobId = Annotated[
    int, typer.Argument(help="The job's id.", min=1, show_default=False, metavar="JOB_ID")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table.")]


def artifacts(
    ctx: typer.Context,
    job_id: JobId,
    download: Annotated[
        Path | None,
        typer.Option(
            "--download",
            "-d",
            help="Download every file into this directory (a folder per task and device).",
            metavar="DIR",
            show_default=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List a job's artifacts, or download them all with --download."""
    with reporting_errors(), hub_client(ctx) as client:
        listing = client.artifacts(job_id)
        if download is not None:
            for artifact in listing.artifacts:
                target = _target(download, artifact)
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.name + ".part")
                with partial.open("wb") as sink:
                    digest = client.download(artifact.download, sink)
                if digest != artifact.sha256:
                    partial.unlink(missing_ok=True)
                    raise UserInputError(
                        f"{artifact.path}: the download's sha256 {digest} is not the stored "
                        f"{artifact.sha256}; nothing was kept"
                    )
                os.replace(partial, target)
                output.stderr.print(f"{target}  {human_size(artifact.size)}", style="dim")
    if json_wanted(ctx, as_json):
        print_json(listing)
        return
    if not listing.artifacts:
        output.stderr.print(f"job {job_id} has no artifacts", style="dim")
        return
    if download is None:
        output.stdout.print(artifacts_table(listing.artifacts))


def artifacts_table(items: list[ArtifactInfo]) -> Table:
    """One row per artifact."""
    table = new_table("id", "path", "device", "task", "size", "stored", "test report")
    for artifact in items:
        report = ""
        if artifact.report_cases is not None:
            report = f"{artifact.report_cases} cases"
        if artifact.report_error:
            report = f"unreadable: {artifact.report_error}"
        table.add_row(
            str(artifact.artifact_id),
            artifact.path,
            artifact.device_name,
            str(artifact.task_id),
            human_size(artifact.size),
            local_time(artifact.created_at),
            report,
        )
    return table


def _target(directory: Path, artifact: ArtifactInfo) -> Path:
    """Where a file goes: DIR/TASK-DEVICE/PATH, never outside DIR."""
    device = "".join(c if c.isalnum() or c in "._-" else "_" for c in artifact.device_name)
    target = (directory / f"{artifact.task_id}-{device}" / artifact.path).resolve()
    if not target.is_relative_to(directory.resolve()):
        raise UserInputError(f"{artifact.path!r} would land outside {directory}; not written")
    return target


def tests(
    ctx: typer.Context,
    job_id: JobId,
    failed: Annotated[
        bool, typer.Option("--failed", help="Only failed and errored cases.")
    ] = False,
    limit: Annotated[int, typer.Option(help="Cases to show.", min=1, max=1000, metavar="N")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """List a job's test cases from its JUnit reports: failed and errored first."""
    outcomes = ["failed", "error"] if failed else []
    with reporting_errors(), hub_client(ctx) as client:
        page = client.job_cases(job_id, outcomes, limit)
    if json_wanted(ctx, as_json):
        print_json(page)
        return
    if not page.cases:
        output.stderr.print(
            f"job {job_id} has no test cases{' that failed' if failed else ''}", style="dim"
        )
        return
    output.stdout.print(cases_table(page.cases))
    if page.next_cursor:
        output.stderr.print(f"more cases: --limit {limit * 2} shows more", style="dim")


def cases_table(cases: list[TestCaseInfo], *, with_job: bool = False) -> Table:
    """One row per test case."""
    columns = ["job", "when"] if with_job else []
    table = new_table(*columns, "outcome", "case", "time", "message")
    for case in cases:
        where = [str(case.job_id), local_time(case.at)] if with_job else []
        name = f"{case.classname}::{case.name}" if case.classname else case.name
        table.add_row(
            *where,
            state_text(case.outcome),
            name,
            "" if case.duration is None else duration_text(case.duration),
            (case.message or "").split("\n")[0][:120],
        )
    return table


def history(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(help="The case's name, or CLASSNAME::NAME.", metavar="NAME"),
    ],
    job_name: Annotated[
        str | None,
        typer.Option("--job-name", help="Only runs of jobs with this name.", metavar="JOB"),
    ] = None,
    limit: Annotated[int, typer.Option(help="Runs to look at.", min=1, max=5000, metavar="N")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Show a test case's history across jobs; a case that both passed and failed on the
    same job name is flagged flaky."""
    with reporting_errors(), hub_client(ctx) as client:
        found = client.case_history(name, job_name=job_name, limit=limit)
    if json_wanted(ctx, as_json):
        print_json(found)
        return
    if not found.histories:
        output.stderr.print(f"no test case called {name!r}", style="dim")
        return
    for item in found.histories:
        flag = Text("  flaky", style="bold yellow") if item.flaky else Text("")
        output.stdout.print(
            Text.assemble(
                (f"{item.classname}::{item.name}" if item.classname else item.name, "bold"),
                f"  on {item.job_name}: {item.passed} passed, {item.failed} failed",
                flag,
            )
        )
        output.stdout.print(cases_table(item.runs, with_job=True))


def delete(
    ctx: typer.Context,
    job_ids: Annotated[
        list[int],
        typer.Argument(help="The jobs' ids.", min=1, show_default=False, metavar="JOB_ID..."),
    ],
) -> None:
    """Delete finished jobs with their events, test cases and artifacts."""
    with reporting_errors(), hub_client(ctx) as client:
        for job_id in job_ids:
            client.delete_job(job_id)
            output.print_line(f"job {job_id} deleted")


def register(job_app: typer.Typer, app: typer.Typer) -> None:
    """Add the results commands to `testfleet job` and `testfleet`."""
    job_app.command("artifacts")(artifacts)
    job_app.command("delete")(delete)
    job_app.command("logs")(logs)
    job_app.command("tests")(tests)
    app.command("testcase")(history)
