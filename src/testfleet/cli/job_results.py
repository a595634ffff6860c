"""`testfleet job artifacts|tests|delete`: what a job left behind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from testfleet.cli import output
from testfleet.cli.context import hub_client
from testfleet.cli.output import UserInputError, print_json, reporting_errors
from testfleet.cli.render import human_size, local_time, new_table
from testfleet.protocol.results import ArtifactInfo

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
    if as_json:
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


def register(job_app: typer.Typer) -> None:
    """Add the results commands to `testfleet job`."""
    job_app.command("artifacts")(artifacts)
