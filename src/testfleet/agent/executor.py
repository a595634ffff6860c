"""Run tasks: each step through its plugin, every happening reported as a numbered event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from testfleet.agent.artifacts import ArtifactUploader, upload_step_artifacts
from testfleet.agent.outbox import Outbox
from testfleet.agent.pausing import PauseControl
from testfleet.protocol.durations import format_duration
from testfleet.protocol.states import RunState
from testfleet.protocol.wire import (
    LogChunk,
    RunTask,
    StepFinished,
    StepSpec,
    StepStarted,
    TaskFinished,
    TaskStarted,
)
from testfleet.steps.base import (
    LogStream,
    ProcessTracker,
    StepContext,
    StepResult,
    Untracked,
)
from testfleet.steps.registry import UnknownPlugin, get_plugin

_log = logging.getLogger(__name__)
_REMEMBERED = 10_000
LOG_CHUNK = 256 * 1024
"""Characters of output per LOG event at most (a frame stays well under the hub's limit)."""
COVERAGE_WAIT = 30.0
"""How long a coverage step waits for the hub to open (or close) its session."""


@dataclass(frozen=True)
class StepSite:
    """What steps learn of the agent they run on: its name, its hub, its cache directory."""

    agent_name: str = ""
    hub_url: str | None = None
    token: str | None = None
    cache_dir: Path | None = None


class TaskExecutor:
    """The tasks this agent runs."""

    def __init__(
        self,
        outbox: Outbox,
        processes: ProcessTracker | None = None,
        *,
        uploader: ArtifactUploader | None = None,
        work_root: Path | None = None,
        keep_work: bool = False,
        environment: Callable[[str], dict[str, str]] = lambda _: {},
        site: StepSite | None = None,
    ) -> None:
        self.outbox = outbox
        self.processes = processes or Untracked()
        self.uploader = uploader
        self.work_root = work_root
        self.keep_work = keep_work
        self._environment = environment
        self.site = site or StepSite()
        self.running: dict[int, asyncio.Task[None]] = {}
        self._stop_reasons: dict[int, str] = {}
        self._seen: OrderedDict[int, None] = OrderedDict()
        self.pausing = PauseControl(outbox)
        self.task_devices: dict[int, str] = {}
        """The device of each running task."""
        self.workdirs: dict[int, Path | None] = {}
        """The working directory of each running task (None: the agent's own)."""

    def held(self) -> list[int]:
        """Tasks running, or finished with the final event not yet acknowledged."""
        return sorted(set(self.running) | self.outbox.unacked_final_tasks())

    def start(self, message: RunTask) -> None:
        """Start a task; a task seen before (a re-sent RUN_TASK) is not run twice."""
        if message.task_id in self._seen:
            _log.info("task %d is known already; not starting it again", message.task_id)
            return
        if message.pause is not None:
            self.pausing.set_flags(message.job_id, message.pause)
        self._remember(message.task_id)
        self.running[message.task_id] = asyncio.create_task(
            self._run(message), name=f"task-{message.task_id}"
        )

    def stop(self, task_id: int, reason: str) -> None:
        """Cancel a running task; it reports itself cancelled. A task stopped before its
        RUN_TASK came (the two can cross between hubs) is reported cancelled and never run."""
        task = self.running.get(task_id)
        if task is not None:
            self._stop_reasons[task_id] = reason
            task.cancel()
            return
        if task_id in self._seen:
            return  # it has finished here already
        _log.info("task %d stopped before it was given to this agent", task_id)
        self._remember(task_id)
        self.outbox.add(
            TaskFinished(seq=1, task_id=task_id, state=RunState.CANCELLED, error=reason),
            final_of_task=task_id,
        )

    def _remember(self, task_id: int) -> None:
        self._seen[task_id] = None
        if len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)

    async def stop_all(self, reason: str) -> None:
        """Cancel every running task and wait for them to report."""
        for task_id in list(self.running):
            self.stop(task_id, reason)
        await asyncio.gather(*self.running.values(), return_exceptions=True)

    async def _run(self, message: RunTask) -> None:
        task_id = message.task_id
        self.outbox.add(TaskStarted(seq=1, task_id=task_id))
        state, error = RunState.PASSED, None
        workdir = await self._workspace(task_id)
        self.workdirs[task_id] = workdir
        self.task_devices[task_id] = message.device_name
        try:
            for index, step in enumerate(message.steps):
                reason = self.pausing.reason_before(message.job_id, step.name)
                if reason is not None:
                    try:
                        await self.pausing.pause(message.job_id, task_id, index, step.name, reason)
                    except asyncio.CancelledError:
                        state, error = (
                            RunState.CANCELLED,
                            self._stop_reasons.pop(task_id, "stopped"),
                        )
                        break
                started = self.outbox.add(StepStarted(seq=1, task_id=task_id, step_index=index))
                try:
                    if step.coverage:
                        await self._hub_ready(message, index, started, "open")
                    result = await self._run_step(message, index, step, workdir)
                    await self._upload(message, index, step, workdir)
                except asyncio.CancelledError:
                    reason = self._stop_reasons.pop(task_id, "stopped")
                    self.outbox.add(
                        StepFinished(
                            seq=1,
                            task_id=task_id,
                            step_index=index,
                            state=RunState.CANCELLED,
                            error=reason,
                        )
                    )
                    state, error = RunState.CANCELLED, reason
                    break
                finished = self.outbox.add(
                    StepFinished(
                        seq=1,
                        task_id=task_id,
                        step_index=index,
                        state=RunState.PASSED if result.passed else RunState.FAILED,
                        exit_code=result.exit_code,
                        error=result.error,
                    )
                )
                if step.coverage:
                    try:
                        await self._hub_ready(message, index, finished, "close")
                    except asyncio.CancelledError:
                        reason = self._stop_reasons.pop(task_id, "stopped")
                        state, error = RunState.CANCELLED, reason
                        break
                if not result.passed:
                    reason = self.pausing.reason_after_failure(message.job_id, step.name)
                    if reason is not None:
                        try:
                            pause = await self.pausing.pause(
                                message.job_id, task_id, index, step.name, reason
                            )
                        except asyncio.CancelledError:
                            reason = self._stop_reasons.pop(task_id, "stopped")
                            state, error = RunState.CANCELLED, reason
                            break
                        if pause.ignore_failure:
                            continue
                    state = RunState.FAILED
                    error = f"step {step.name!r} failed" + (
                        f": {result.error}" if result.error else ""
                    )
                    break
        finally:
            self.workdirs.pop(task_id, None)
            self.task_devices.pop(task_id, None)
            self.outbox.add(
                TaskFinished(seq=1, task_id=task_id, state=state, error=error),
                final_of_task=task_id,
            )
            self.running.pop(task_id, None)
            if workdir is not None and not self.keep_work:
                await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _hub_ready(self, message: RunTask, index: int, seq: int, what: str) -> None:
        """Wait for the hub to acknowledge a coverage step's start (it has opened the
        session) or end (it has closed it); say so in the step's log if it does not."""
        if not await self.outbox.wait_acked(seq, COVERAGE_WAIT):
            self.outbox.add(
                LogChunk(
                    seq=1,
                    task_id=message.task_id,
                    step_index=index,
                    stream="info",
                    text=f"the hub did not confirm the coverage session ({what}) within "
                    f"{COVERAGE_WAIT:g} s; going on\n",
                )
            )

    async def _workspace(self, task_id: int) -> Path | None:
        """A fresh working directory for the task (None: no work root configured)."""
        if self.work_root is None:
            return None
        workdir = self.work_root / f"task-{task_id}"
        await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
        return workdir

    async def _upload(
        self, message: RunTask, index: int, step: StepSpec, workdir: Path | None
    ) -> None:
        """Upload the files the step declared as artifacts (problems go to its log)."""
        if not step.artifacts:
            return
        if self.uploader is None:
            self._log_line(message.task_id, index, "stderr", "artifacts: this agent cannot upload")
            return

        async def log(stream: LogStream, text: str) -> None:
            self._log_line(message.task_id, index, stream, text)

        await upload_step_artifacts(
            self.uploader,
            workdir or Path.cwd(),
            message.task_id,
            index,
            step.artifacts,
            log,
        )

    def _log_line(self, task_id: int, index: int, stream: LogStream, text: str) -> None:
        self.outbox.add(
            LogChunk(seq=1, task_id=task_id, step_index=index, stream=stream, text=text)
        )

    async def _run_step(
        self, message: RunTask, index: int, step: StepSpec, workdir: Path | None = None
    ) -> StepResult:
        try:
            plugin = get_plugin(step.plugin, internal=True)
            params = plugin.Params.model_validate(step.params)
        except UnknownPlugin as error:
            return StepResult(passed=False, error=f"{error} (on this agent)")
        except ValidationError as error:
            return StepResult(passed=False, error=f"invalid params: {error}")

        async def log(stream: LogStream, text: str) -> None:
            for start in range(0, max(len(text), 1), LOG_CHUNK):
                self.outbox.add(
                    LogChunk(
                        seq=1,
                        task_id=message.task_id,
                        step_index=index,
                        stream=stream,
                        text=text[start : start + LOG_CHUNK],
                    )
                )

        context = StepContext(
            job_id=message.job_id,
            task_id=message.task_id,
            step_index=index,
            device_name=message.device_name,
            log=log,
            timeout=step.timeout,
            processes=self.processes,
            workdir=workdir,
            env=self._environment(message.device_name),
            agent_name=self.site.agent_name,
            hub_url=self.site.hub_url,
            token=self.site.token,
            cache_dir=self.site.cache_dir,
        )
        try:
            async with asyncio.timeout(step.timeout):
                return await plugin().run(context, params)
        except TimeoutError:
            assert step.timeout is not None
            return StepResult(
                passed=False, error=f"timed out after {format_duration(step.timeout)}"
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a plugin's bug fails its step, not the agent
            _log.exception("step %r of task %d raised", step.name, message.task_id)
            with contextlib.suppress(Exception):
                await log("stderr", f"{type(error).__name__}: {error}\n")
            return StepResult(passed=False, error=f"{type(error).__name__}: {error}")
