"""`testfleet plan ...`: import, list and show plans; build, run, follow and collect runs
(Testground's daemon API: /build, /run, /status, /tasks, /logs, /outputs, /terminate,
/healthcheck)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydantic import ValidationError

from testfleet.cli.context import HubOptions, hub_options, json_wanted
from testfleet.cli.output import (
    EXIT_FAILED,
    UserInputError,
    print_json,
    print_line,
    reporting_errors,
    write_text,
)
from testfleet.client import ApiError, HubUnreachable
from testfleet.protocol.api import ErrorBody
from testfleet.protocol.plan_api import HealthReport, PlanInfo, PlanList, PlanTask, TaskList
from testfleet.protocol.version import REQUESTOR_HEADER
from testfleet.steps.plan.archive import ArchiveError, zip_directory

plan_app = typer.Typer(
    help="Test plans: import, build, run, and collect their outputs.", no_args_is_help=True
)
JSON = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
RUNNER = Annotated[str, typer.Option("--runner", help="local:exec or cluster:agents.")]


def _http(ctx: typer.Context, timeout: float | None = None) -> httpx.Client:
    options: HubOptions = hub_options(ctx)
    headers = {"Authorization": f"Bearer {options.token}"} if options.token else {}
    if options.requestor:
        headers[REQUESTOR_HEADER] = options.requestor
    return httpx.Client(
        base_url=options.url.rstrip("/"), headers=headers, timeout=timeout or options.timeout
    )


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as error:
        raise HubUnreachable(str(client.base_url), str(error)) from None
    if response.is_error:
        try:
            body = ErrorBody.model_validate(response.json())
        except (ValueError, ValidationError):
            body = ErrorBody(
                code="http_error", message=response.text[:500] or response.reason_phrase
            )
        raise ApiError.from_body(response.status_code, body)
    return response


def _zip(directory: Path) -> bytes:
    if not (directory / "manifest.toml").is_file():
        raise UserInputError(f"{directory} has no manifest.toml: it is not a plan directory")
    try:
        return zip_directory(directory)
    except ArchiveError as error:
        raise UserInputError(str(error)) from None


def _composition(path: Path) -> tuple[bytes, str]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserInputError(f"cannot read {path}: {error.strerror}") from None
    media = "application/toml" if path.suffix.lower() == ".toml" else "application/json"
    return data, media


def _print_task(task: PlanTask) -> None:
    states = " -> ".join(f"{s.state} {s.created:%H:%M:%S}" for s in task.states)
    print_line(f"{task.type} {task.id}  {task.plan}/{task.case}  {task.runner}  [{states}]")
    if task.job_id is not None:
        print_line(f"  job {task.job_id}")
    if task.result:
        if "outcomes" in task.result:
            print_line(f"  outcome: {task.result.get('outcome')}")
            for group, counts in task.result["outcomes"].items():
                print_line(f"    {group}: {counts['ok']}/{counts['total']} ok")
        else:
            print_line(f"  result: {json.dumps(task.result)}")
    if task.error:
        print_line(f"  error: {task.error}")


@plan_app.command("import")
def import_plan(ctx: typer.Context, directory: Path, as_json: JSON = False) -> None:
    """Send a plan directory (with manifest.toml) to the hub."""
    with reporting_errors(), _http(ctx, 300) as client:
        response = _call(
            client,
            "POST",
            "/api/v1/plans",
            content=_zip(directory),
            headers={"Content-Type": "application/zip"},
        )
        plan = PlanInfo.model_validate(response.json())
        if json_wanted(ctx, as_json):
            print_json(plan)
            return
        cases = ", ".join(c.name for c in plan.manifest.testcases)
        print_line(
            f"imported plan {plan.name} ({plan.source_size} bytes, "
            f"{plan.source_hash[:12]}): {cases}"
        )


@plan_app.command("list")
def list_plans(ctx: typer.Context, as_json: JSON = False) -> None:
    """The plans the hub knows."""
    with reporting_errors(), _http(ctx) as client:
        plans = PlanList.model_validate(_call(client, "GET", "/api/v1/plans").json())
        if json_wanted(ctx, as_json):
            print_json(plans)
            return
        for plan in plans.plans:
            cases = ", ".join(c.name for c in plan.manifest.testcases)
            print_line(f"{plan.name}  {plan.imported_at:%Y-%m-%d %H:%M}  cases: {cases}")


@plan_app.command("show")
def show_plan(ctx: typer.Context, name: str, as_json: JSON = False) -> None:
    """A plan's cases, instance bounds and parameters."""
    with reporting_errors(), _http(ctx) as client:
        plan = PlanInfo.model_validate(_call(client, "GET", f"/api/v1/plans/{name}").json())
        if json_wanted(ctx, as_json):
            print_json(plan)
            return
        manifest = plan.manifest
        print_line(
            f"plan {plan.name}: builder {manifest.defaults.builder}, "
            f"runner {manifest.defaults.runner}"
        )
        for case in manifest.testcases:
            bounds = case.instances
            print_line(
                f"  case {case.name}: {bounds.min}..{bounds.max} instances "
                f"(default {bounds.default})"
            )
            for param, spec in case.params.items():
                print_line(f"    {param}: {spec.type} = {spec.default!r}  {spec.desc}")


@plan_app.command("build")
def build(
    ctx: typer.Context,
    composition: Path,
    plan_dir: Annotated[Path, typer.Option("--plan-dir", help="The plan's directory.")],
    sdk_dir: Annotated[
        Path | None, typer.Option("--sdk-dir", help="A linked SDK's directory.")
    ] = None,
) -> None:
    """Build a plan for a composition (POST /build); prints the task's result."""
    with reporting_errors(), _http(ctx, 300) as client:
        data, media = _composition(composition)
        files: list[tuple[str, tuple[str, bytes, str]]] = [
            ("composition", ("composition", data, media)),
            ("plan", ("plan.zip", _zip(plan_dir), "application/zip")),
        ]
        if sdk_dir is not None:
            files.append(("sdk", ("sdk.zip", zip_directory(sdk_dir), "application/zip")))
        task_id = _call(client, "POST", "/build", files=files).json()["task_id"]
        _print_task(
            PlanTask.model_validate(
                _call(client, "POST", "/status", json={"task_id": task_id}).json()
            )
        )


@plan_app.command("run")
def run(
    ctx: typer.Context,
    composition: Path,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the outcome.")] = True,
    plan_dir: Annotated[
        Path | None, typer.Option("--plan-dir", help="Import this plan first.")
    ] = None,
    within: Annotated[float, typer.Option("--within", help="Seconds to wait at most.")] = 3600,
) -> None:
    """Run a composition (POST /run); with --wait, exit 0 only if every group is fully ok."""
    with reporting_errors(), _http(ctx, 300) as client:
        if plan_dir is not None:
            _call(
                client,
                "POST",
                "/api/v1/plans",
                content=_zip(plan_dir),
                headers={"Content-Type": "application/zip"},
            )
        data, media = _composition(composition)
        task_id = _call(
            client, "POST", "/run", content=data, headers={"Content-Type": media}
        ).json()["task_id"]
        print_line(f"run {task_id}")
        if not wait:
            return
        deadline = time.monotonic() + within
        while True:
            task = PlanTask.model_validate(
                _call(client, "POST", "/status", json={"task_id": task_id}).json()
            )
            if task.state.finished or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        _print_task(task)
        if not task.state.finished:
            raise typer.Exit(EXIT_FAILED)
        if (task.result or {}).get("outcome") != "success":
            raise typer.Exit(EXIT_FAILED)


@plan_app.command("status")
def status(ctx: typer.Context, task_id: str, as_json: JSON = False) -> None:
    """A task's states and result."""
    with reporting_errors(), _http(ctx) as client:
        task = PlanTask.model_validate(
            _call(client, "POST", "/status", json={"task_id": task_id}).json()
        )
        print_json(task) if json_wanted(ctx, as_json) else _print_task(task)


@plan_app.command("tasks")
def tasks(
    ctx: typer.Context,
    type_: Annotated[list[str], typer.Option("--type", help="build or run (repeatable).")] = [],  # noqa: B006
    state: Annotated[list[str], typer.Option("--state", help="scheduled, processing, ...")] = [],  # noqa: B006
    plan: Annotated[str | None, typer.Option("--plan")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    as_json: JSON = False,
) -> None:
    """Build and run tasks, newest first."""
    with reporting_errors(), _http(ctx) as client:
        body = {"types": type_, "states": state, "plan": plan, "limit": limit}
        found = TaskList.model_validate(_call(client, "POST", "/tasks", json=body).json())
        if json_wanted(ctx, as_json):
            print_json(found)
            return
        for task in found.tasks:
            outcome = (task.result or {}).get("outcome", "")
            print_line(
                f"{task.id}  {task.type:5}  {task.plan}/{task.case}  {task.state:10}  {outcome}"
            )


@plan_app.command("logs")
def logs(
    ctx: typer.Context,
    task_id: str,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Until the task ends.")] = False,
) -> None:
    """A task's log (a run's: its agents' plan step output)."""
    with reporting_errors(), _http(ctx, None if follow else 60) as client:
        try:
            with client.stream(
                "POST", "/logs", json={"task_id": task_id, "follow": follow}
            ) as response:
                if response.is_error:
                    response.read()
                    _call(client, "POST", "/logs", json={"task_id": task_id})
                for text in response.iter_text():
                    write_text(text) if text.endswith("\n") else print(text, end="", flush=True)
        except httpx.HTTPError as error:
            raise HubUnreachable(str(client.base_url), str(error)) from None


@plan_app.command("outputs")
def outputs(
    ctx: typer.Context,
    run_id: str,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="[default: RUN_ID.tgz]")
    ] = None,
    runner: Annotated[str | None, typer.Option("--runner", help="The run's runner.")] = None,
) -> None:
    """Download a run's outputs (a tar.gz laid out by group and instance)."""
    with reporting_errors(), _http(ctx, 600) as client:
        if runner is None:
            task = PlanTask.model_validate(
                _call(client, "POST", "/status", json={"task_id": run_id}).json()
            )
            runner = task.runner
        response = _call(client, "POST", "/outputs", json={"runner": runner, "run_id": run_id})
        target = output or Path(f"{run_id}.tgz")
        target.write_bytes(response.content)
        print_line(f"wrote {target} ({len(response.content)} bytes)")


@plan_app.command("terminate")
def terminate(ctx: typer.Context, runner: RUNNER) -> None:
    """Stop every unfinished task of a runner."""
    with reporting_errors(), _http(ctx) as client:
        stopped = _call(client, "POST", "/terminate", json={"runner": runner}).json()["tasks"]
        print_line(
            f"asked {len(stopped)} task(s) to stop" + (f": {', '.join(stopped)}" if stopped else "")
        )


@plan_app.command("healthcheck")
def healthcheck(
    ctx: typer.Context,
    runner: RUNNER,
    fix: Annotated[bool, typer.Option("--fix", help="Repair what can be repaired.")] = False,
    as_json: JSON = False,
) -> None:
    """Check what a runner needs; exit 1 when a check failed."""
    with reporting_errors(), _http(ctx) as client:
        report = HealthReport.model_validate(
            _call(client, "POST", "/healthcheck", json={"runner": runner, "fix": fix}).json()
        )
        if json_wanted(ctx, as_json):
            print_json(report)
        else:
            for check in report.checks:
                print_line(f"{check.status:8} {check.name}: {check.message}")
            for done in report.fixes:
                print_line(f"{done.status:8} fix {done.name}: {done.message}")
        if any(c.status == "failed" for c in report.checks):
            raise typer.Exit(EXIT_FAILED)
