"""`testfleet job logs`: a job's output as people read it, each line prefixed with its device
(or grouped by task), one step by name or index, live with --follow."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Annotated

import typer

from testfleet.cli import output
from testfleet.cli.context import hub_client
from testfleet.cli.output import UserInputError, print_line, reporting_errors
from testfleet.protocol.api import EventRecord, JobStatus

PAGE = 1000


@dataclass
class LogPrinter:
    """Turns log events (arbitrary chunks) into whole lines with their device in front."""

    devices: dict[int, str]
    step: int | None = None
    group: bool = False
    task: int | None = None
    raw: bool = False
    _partial: dict[int | None, str] = field(default_factory=dict)
    _grouped: defaultdict[int | None, list[str]] = field(default_factory=lambda: defaultdict(list))

    @property
    def width(self) -> int:
        return max((len(name) for name in self.devices.values()), default=0)

    def feed(self, event: EventRecord) -> None:
        """Take one event; print the whole lines it completes."""
        if event.kind != "log":
            return
        if self.step is not None and event.data.get("step_index") != self.step:
            return
        if self.task is not None and event.task_id != self.task:
            return
        text = self._partial.pop(event.task_id, "") + str(event.data.get("text", ""))
        *lines, rest = text.split("\n")
        if rest:
            self._partial[event.task_id] = rest
        for line in lines:
            self._emit(event.task_id, line)

    def finish(self) -> None:
        """Print what is left: lines without a newline, and the groups."""
        for task_id, rest in list(self._partial.items()):
            self._emit(task_id, rest)
        self._partial.clear()
        for task_id, lines in self._grouped.items():
            device = self.devices.get(task_id or 0, "hub")
            print_line(f"== task {task_id} on {device} ==")
            for line in lines:
                print_line(line)
        self._grouped.clear()

    def _emit(self, task_id: int | None, line: str) -> None:
        if self.raw:
            print_line(line)
            return
        if self.group:
            self._grouped[task_id].append(line)
            return
        device = self.devices.get(task_id or 0, "hub")
        print_line(f"{device:<{self.width}} | {line}")


def step_index(status: JobStatus, step: str | None) -> int | None:
    """The index of the step named `step` (or given as a number) in the job's tests."""
    if step is None:
        return None
    if step.isdigit():
        return int(step)
    names = {
        s.name: s.index
        for run in status.runs
        for test in run.tests
        for task in test.tasks
        for s in task.steps
    }
    if step in names:
        return names[step]
    for test in status.descriptor.get("tests", []):
        for index, spec in enumerate(test.get("steps", [])):
            if spec.get("name") == step:
                return index
    known = ", ".join(sorted(names)) or "none yet"
    raise UserInputError(f"job {status.job_id} has no step named {step!r} (steps: {known})")


def devices_of(status: JobStatus) -> dict[int, str]:
    """Task id -> its device's name."""
    return {
        task.task_id: task.device_name or task.device_id
        for run in status.runs
        for test in run.tests
        for task in test.tasks
    }


def logs(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(help="The job's id.", min=1, metavar="JOB_ID")],
    step: Annotated[
        str | None,
        typer.Option(
            "--step", "-s", help="Only this step: its name, or its index from 0.", metavar="STEP"
        ),
    ] = None,
    by_task: Annotated[
        bool, typer.Option("--by-task", help="Group the lines by task instead of prefixing them.")
    ] = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing lines until the job ends.")
    ] = False,
    task: Annotated[
        int | None, typer.Option("--task", help="Only this task (its id).", min=1, metavar="ID")
    ] = None,
    raw: Annotated[
        bool, typer.Option("--raw", help="The output exactly as the steps wrote it, no prefixes.")
    ] = False,
) -> None:
    """Print a job's log output (its steps' stdout and stderr), each line prefixed with its
    device."""
    with reporting_errors(), hub_client(ctx) as client:
        status = client.status(job_id)
        index = step_index(status, step)
        if raw and not follow:
            output.write_text(client.logs(job_id, task, index))
            return
        printer = LogPrinter(devices_of(status), index, by_task, task, raw)
        if follow:
            try:
                with client.follow(job_id) as stream:
                    for event in stream:
                        if event.task_id is not None and event.task_id not in printer.devices:
                            printer.devices = devices_of(client.status(job_id))
                        printer.feed(event)
            except KeyboardInterrupt:
                printer.finish()
                raise typer.Exit(output.EXIT_INTERRUPTED) from None
        else:
            after = 0
            while True:
                page = client.log_events(job_id, after, PAGE)
                for event in page.events:
                    printer.feed(event)
                if not page.events or page.next_after <= after:
                    break
                after = page.next_after
        printer.finish()
