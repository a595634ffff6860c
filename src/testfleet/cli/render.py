"""Rich renderings of the API's models: job trees, tables, event lines and summaries."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from testfleet.protocol.api import (
    AgentInfo,
    DeviceInfo,
    EventRecord,
    JobStatus,
    JobSummary,
    ReporterResult,
    StepStatus,
    TaskStatus,
    TestStatus,
)
from testfleet.protocol.durations import format_duration
from testfleet.protocol.results import TestReport
from testfleet.protocol.states import RunState

STATE_STYLES = {
    "queued": "dim",
    "pending": "dim",
    "skipped": "dim",
    "running": "cyan",
    "paused": "yellow",
    "cancelling": "yellow",
    "cancelled": "yellow",
    "completed": "green",
    "passed": "green",
    "failed": "bold red",
    "error": "bold red",
    "incomplete": "magenta",
    "online": "green",
    "offline": "red",
    "free": "green",
    "busy": "yellow",
}


def new_table(*columns: str) -> Table:
    """A table in the CLI's one style: a simple header rule, no outer box."""
    table = Table(box=box.SIMPLE_HEAD)
    for column in columns:
        table.add_column(column, justify="right" if column in _NUMERIC else "left")
    return table


_NUMERIC = frozenset({"id", "size", "task", "job", "attempts", "devices", "cases", "#"})


def human_size(size: int) -> str:
    """`1.5 GiB`, `300.0 KiB`, `12 B`."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def state_text(state: str) -> Text:
    """A state word in its colour."""
    return Text(str(state), style=STATE_STYLES.get(str(state), ""))


def local_time(moment: datetime | None) -> str:
    """`2024-05-01 14:03:07` in the local zone, or `-`."""
    return "-" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def span(started: datetime | None, ended: datetime | None, now: datetime | None = None) -> str:
    """How long something took (or has been running), or an empty string."""
    if started is None:
        return ""
    end = ended or now or datetime.now(UTC)
    return duration_text((end - started).total_seconds())


def duration_text(seconds: float) -> str:
    """`250ms`, `1.5s`, `2m5s`: short, with no false precision."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return format_duration(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    return format_duration(round(seconds))


def job_tree(status: JobStatus, now: datetime | None = None) -> Tree:
    """The whole job: runs, tests, tasks (one per device) and their steps."""
    label = Text.assemble(
        (f"job {status.job_id} ", "bold"), (status.name, "bold"), " ", state_text(status.state)
    )
    took = span(status.started_at, status.ended_at, now)
    label.append(f"  {took}" if took else "", style="dim")
    tree = Tree(label)
    tree.add(Text(_job_facts(status), style="dim"))
    for reason in paused_reasons(status):
        tree.add(Text(f"paused: {reason}", style="yellow"))
    if status.error:
        tree.add(Text(status.error, style="red"))
    for run in status.runs:
        heading = Text.assemble(
            f"run {run.number} ",
            state_text(run.state),
            (f"  {span(run.started_at, run.ended_at, now)}", "dim"),
        )
        run_node = tree.add(heading)
        for test in run.tests:
            _add_test(run_node, test, now)
        for result in run.reporters:
            run_node.add(reporter_text(result))
    if status.final_reporters:
        final = tree.add(Text("final reporters", style="bold"))
        for result in status.final_reporters:
            final.add(reporter_text(result))
    if status.test_report is not None:
        report = tree.add(test_counts_text(status.test_report))
        for line in failed_case_lines(status.test_report):
            report.add(line)
    return tree


FAILED_SHOWN = 10


def test_counts_text(report: TestReport) -> Text:
    """`test cases: 12 (10 passed, 1 failed, 1 skipped)`."""
    counts = report.counts
    parts = [
        Text(f"{count} {outcome}", style=STATE_STYLES.get(outcome, ""))
        for outcome, count in (
            ("passed", counts.passed),
            ("failed", counts.failed),
            ("error", counts.error),
            ("skipped", counts.skipped),
        )
        if count
    ]
    text = Text.assemble(("test cases: ", "bold"), f"{counts.total}")
    if parts:
        text.append(" (")
        text.append(Text(", ").join(parts))
        text.append(")")
    return text


def failed_case_lines(report: TestReport) -> list[Text]:
    """The first failed cases, then the reports that could not be read."""
    lines = []
    for case in report.failed_cases[:FAILED_SHOWN]:
        name = f"{case.classname}::{case.name}" if case.classname else case.name
        message = (case.message or "").split("\n")[0][:120]
        lines.append(Text.assemble((f"{case.outcome} ", "bold red"), name, (f"  {message}", "dim")))
    more = report.counts.failed + report.counts.error - FAILED_SHOWN
    if more > 0:
        lines.append(Text(f"... and {more} more ('testfleet job tests ID --failed')", style="dim"))
    lines += [
        Text(f"unreadable report {problem}", style="yellow") for problem in report.report_errors
    ]
    return lines


def paused_reasons(status: JobStatus) -> list[str]:
    """Developer mode: why each paused task of the job is paused (`task 4 (slot-0): ...`)."""
    return [
        f"task {task.task_id} ({task.device_name}): {task.paused}"
        for run in status.runs
        for test in run.tests
        for task in test.tasks
        if task.paused
    ]


def _job_facts(status: JobStatus) -> str:
    facts = [f"requestor {status.requestor}", f"created {local_time(status.created_at)}"]
    if status.tags:
        facts.append("tags " + ", ".join(status.tags))
    runs = "until stopped" if status.runs_requested == 0 else str(status.runs_requested)
    facts.append(f"runs {runs}")
    if status.retried_from is not None:
        facts.append(f"retry of job {status.retried_from}")
    return "; ".join(facts)


def _add_test(parent: Tree, test: TestStatus, now: datetime | None) -> None:
    heading = Text.assemble(("test ", "bold"), (test.name, "bold"), " ", state_text(test.state))
    if test.attempts > 1:
        heading.append(f"  {test.attempts} attempts", style="dim")
    heading.append(f"  {span(test.started_at, test.ended_at, now)}", style="dim")
    node = parent.add(heading)
    if test.error:
        node.add(Text(test.error, style="red"))
    if test.waiting:
        node.add(Text(test.waiting, style="yellow"))
    elif not test.tasks and test.state == RunState.PENDING:
        node.add(Text("waiting for devices", style="dim"))
    for task in test.tasks:
        _add_task(node, task, now)


def _add_task(parent: Tree, task: TaskStatus, now: datetime | None) -> None:
    heading = Text.assemble(
        f"task {task.task_id}: ",
        (task.device_name or task.device_id, "bold"),
        f" on {task.agent}, attempt {task.attempt} ",
        state_text(task.state),
        (f"  {span(task.started_at, task.ended_at, now)}", "dim"),
    )
    if task.paused:
        heading.append(f"  paused: {task.paused}", style="yellow")
    node = parent.add(heading)
    if task.error and not any(step.error for step in task.steps):
        node.add(Text(task.error, style="red"))
    if task.steps:
        node.add(steps_table(task.steps, now))


def steps_table(steps: Iterable[StepStatus], now: datetime | None = None) -> Table:
    """One row per step: name, plugin, state, exit code, duration and error."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in ("#", "step", "plugin", "state", "exit", "time", "error"):
        table.add_column(column, overflow="fold")
    for step in steps:
        table.add_row(
            str(step.index),
            step.name,
            step.plugin,
            state_text(step.state),
            "" if step.exit_code is None else str(step.exit_code),
            span(step.started_at, step.ended_at, now),
            Text(step.error or "", style="red"),
        )
    return table


def reporter_text(result: ReporterResult) -> Text:
    """`reporter target_success: ok  3 of 3 passed`."""
    verdict = ("ok", "green") if result.success else ("failed", "bold red")
    return Text.assemble(f"reporter {result.name}: ", verdict, f"  {result.message}")


def job_summary(status: JobStatus) -> RenderableType:
    """A few lines for the end of a followed job: outcome, test counts, failures, reporters."""
    lines = [
        Text.assemble(
            (f"job {status.job_id} {status.name} ", "bold"),
            state_text(status.state),
            f" after {span(status.started_at, status.ended_at) or '0s'}",
        )
    ]
    counts: dict[str, int] = {}
    for run in status.runs:
        for test in run.tests:
            counts[test.state] = counts.get(test.state, 0) + 1
    if counts:
        parts = [f"{count} {state}" for state, count in sorted(counts.items())]
        lines.append(Text("tests: " + ", ".join(parts)))
    problems = failures(status)
    if status.error and not problems:
        lines.append(Text(status.error, style="red"))
    lines += [Text(f"  {problem}", style="red") for problem in problems]
    if status.test_report is not None:
        lines.append(test_counts_text(status.test_report))
        lines += [Text.assemble("  ", line) for line in failed_case_lines(status.test_report)]
    lines += [reporter_text(result) for run in status.runs for result in run.reporters]
    lines += [reporter_text(result) for result in status.final_reporters]
    return Group(*lines)


def failures(status: JobStatus) -> list[str]:
    """One line per failed step, or per failed or incomplete task without one, saying why."""
    found: list[str] = []
    bad = {RunState.FAILED, RunState.INCOMPLETE}
    for run in status.runs:
        for test in run.tests:
            for task in test.tasks:
                where = (
                    f"run {run.number} test {test.name} task {task.task_id} ({task.device_name})"
                )
                steps = [step for step in task.steps if step.state in bad]
                for step in steps:
                    why = step.error or f"exit code {step.exit_code}"
                    found.append(f"{where} step {step.name}: {why}")
                if not steps and task.state in bad:
                    found.append(f"{where}: {task.error or task.state}")
    return found


def jobs_table(jobs: Iterable[JobSummary]) -> Table:
    """One row per job."""
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("id", "name", "state", "requestor", "tags", "created", "time"):
        table.add_column(column, justify="right" if column == "id" else "left")
    for job in jobs:
        table.add_row(
            str(job.job_id),
            job.name,
            state_text(job.state),
            job.requestor,
            ",".join(job.tags),
            local_time(job.created_at),
            span(job.started_at, job.ended_at),
        )
    return table


def agents_table(agents: Iterable[AgentInfo]) -> Table:
    """One row per agent."""
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("name", "state", "version", "devices", "labels", "last seen", "hub"):
        table.add_column(column)
    for agent in agents:
        table.add_row(
            agent.name,
            state_text(agent.state),
            agent.version,
            str(agent.devices),
            _pairs(agent.labels),
            local_time(agent.last_seen),
            agent.hub or "",
        )
    return table


def devices_table(devices: Iterable[DeviceInfo]) -> Table:
    """One row per device."""
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("id", "name", "agent", "kind", "state", "held by"):
        table.add_column(column, no_wrap=True)
    table.add_column("capabilities", overflow="fold")
    table.add_column("labels", overflow="fold")
    for device in devices:
        job = "" if device.holder_job_id is None else f"job {device.holder_job_id}"
        if device.holder_session_id is not None:
            job = f"session {device.holder_session_id}"
        table.add_row(
            device.device_id,
            device.name,
            device.agent,
            device.kind,
            state_text(device.state),
            job,
            _pairs(device.capabilities),
            _pairs(device.labels),
        )
    return table


def event_line(event: EventRecord) -> str:
    """One event as plain text: time, id, kind, task and details (log text line by line)."""
    when = event.at.astimezone().strftime("%H:%M:%S.%f")[:-3]
    task = f" task {event.task_id}" if event.task_id is not None else ""
    prefix = f"{when} #{event.id} {event.kind}{task}"
    if event.kind == "log":
        stream = event.data.get("stream", "")
        text = str(event.data.get("text", "")).rstrip("\n")
        return "\n".join(f"{prefix} [{stream}] {line}" for line in text.split("\n"))
    details = " ".join(
        f"{key}={_short(value)}" for key, value in event.data.items() if value is not None
    )
    return f"{prefix} {details}".rstrip()


def _pairs(values: dict[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in sorted(values.items()))


def _short(value: Any, limit: int = 120) -> str:
    text = str(value).replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."
