"""Run tasks: each step through its plugin, every happening reported as a numbered event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict

from pydantic import ValidationError

from testfleet.agent.outbox import Outbox
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
from testfleet.steps.base import LogStream, StepContext, StepResult
from testfleet.steps.registry import UnknownPlugin, get_plugin

_log = logging.getLogger(__name__)
_REMEMBERED = 10_000
COVERAGE_WAIT = 30.0
"""How long a coverage step waits for the hub to open (or close) its session."""


class TaskExecutor:
    """The tasks this agent runs."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.running: dict[int, asyncio.Task[None]] = {}
        self._stop_reasons: dict[int, str] = {}
        self._seen: OrderedDict[int, None] = OrderedDict()

    def held(self) -> list[int]:
        """Tasks running, or finished with the final event not yet acknowledged."""
        return sorted(set(self.running) | self.outbox.unacked_final_tasks())

    def start(self, message: RunTask) -> None:
        """Start a task; a task seen before (a re-sent RUN_TASK) is not run twice."""
        if message.task_id in self._seen:
            _log.info("task %d is known already; not starting it again", message.task_id)
            return
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
        try:
            for index, step in enumerate(message.steps):
                started = self.outbox.add(StepStarted(seq=1, task_id=task_id, step_index=index))
                try:
                    if step.coverage:
                        await self._hub_ready(message, index, started, "open")
                    result = await self._run_step(message, index, step)
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
                    state = RunState.FAILED
                    error = f"step {step.name!r} failed" + (
                        f": {result.error}" if result.error else ""
                    )
                    break
        finally:
            self.outbox.add(
                TaskFinished(seq=1, task_id=task_id, state=state, error=error),
                final_of_task=task_id,
            )
            self.running.pop(task_id, None)

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

    async def _run_step(self, message: RunTask, index: int, step: StepSpec) -> StepResult:
        try:
            plugin = get_plugin(step.plugin)
            params = plugin.Params.model_validate(step.params)
        except UnknownPlugin as error:
            return StepResult(passed=False, error=f"{error} (on this agent)")
        except ValidationError as error:
            return StepResult(passed=False, error=f"invalid params: {error}")

        async def log(stream: LogStream, text: str) -> None:
            self.outbox.add(
                LogChunk(seq=1, task_id=message.task_id, step_index=index, stream=stream, text=text)
            )

        context = StepContext(
            job_id=message.job_id,
            task_id=message.task_id,
            step_index=index,
            device_name=message.device_name,
            log=log,
            timeout=step.timeout,
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
