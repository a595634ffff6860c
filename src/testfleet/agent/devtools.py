"""Developer mode on the agent: looking around a paused task's working directory.

The listing and the commands answer with numbered events (DEV_LISTING, DEV_COMMAND_OUTPUT,
DEV_COMMAND_FINISHED), so every hub following the job sees them. A command runs only while
its task is paused, in the task's working directory, with a time limit and an output limit
(past either it is killed, and the end says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
from pathlib import Path
from typing import Any

from testfleet.agent.outbox import Outbox
from testfleet.agent.pausing import PauseControl
from testfleet.protocol.wire import DevCommandFinished, DevCommandOutput, DevListing
from testfleet.protocol.wire_dev import DevList, DevRun

_log = logging.getLogger(__name__)
MAX_ENTRIES = 500
"""Directory entries listed at most."""
READ_SIZE = 16 * 1024


class DevTools:
    """Answers DEV_LIST and DEV_RUN for the tasks of one executor."""

    def __init__(
        self, outbox: Outbox, pausing: PauseControl, workdirs: dict[int, Path | None]
    ) -> None:
        self._outbox = outbox
        self._pausing = pausing
        self._workdirs = workdirs
        self.commands: set[asyncio.Task[None]] = set()

    def _directory(self, task_id: int) -> Path | None:
        if task_id not in self._workdirs:
            return None
        return self._workdirs[task_id] or Path.cwd()

    async def listing(self, message: DevList) -> None:
        """Report the task's working directory (an error when the task is not running here)."""
        directory = self._directory(message.task_id)
        if directory is None:
            self._outbox.add(
                DevListing(
                    seq=1,
                    task_id=message.task_id,
                    request_id=message.request_id,
                    directory="",
                    error="the task is not running on this agent",
                )
            )
            return
        entries, truncated, error = await asyncio.to_thread(_list_directory, directory)
        self._outbox.add(
            DevListing(
                seq=1,
                task_id=message.task_id,
                request_id=message.request_id,
                directory=str(directory)[:2000],
                entries=entries,
                truncated=truncated,
                error=error,
            )
        )

    def run(self, message: DevRun) -> None:
        """Start the command in the background (its events report on it)."""
        task = asyncio.create_task(self._run(message), name=f"dev-{message.command_id}")
        self.commands.add(task)
        task.add_done_callback(self.commands.discard)

    async def _run(self, message: DevRun) -> None:
        directory = self._directory(message.task_id)
        if directory is None or message.task_id not in self._pausing.paused:
            why = (
                "the task is not running on this agent"
                if directory is None
                else "the task is not paused: commands run only while it is"
            )
            self._finished(message, None, error=why)
            return
        try:
            process = await asyncio.create_subprocess_shell(
                message.command,
                cwd=directory,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as error:
            self._finished(message, None, error=f"cannot start: {error}")
            return
        budget = [message.max_output]
        truncated = asyncio.Event()
        assert process.stdout is not None and process.stderr is not None
        readers: asyncio.Future[Any] = asyncio.gather(
            self._pump(message, process.stdout, "stdout", budget, truncated),
            self._pump(message, process.stderr, "stderr", budget, truncated),
        )
        timed_out = False
        waiter: asyncio.Future[Any] = asyncio.ensure_future(truncated.wait())
        try:
            async with asyncio.timeout(message.timeout):
                await asyncio.wait([readers, waiter], return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            timed_out = True
        except asyncio.CancelledError:
            _kill(process)
            raise
        finally:
            waiter.cancel()
        if timed_out or truncated.is_set():
            _kill(process)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await readers
        with contextlib.suppress(Exception):  # the rest of its output, so its pipes close
            async with asyncio.timeout(5):
                await process.communicate()
        code = process.returncode if not (timed_out or truncated.is_set()) else None
        ended: str | None = None
        if timed_out:
            ended = f"killed after {message.timeout:g} s"
        elif truncated.is_set():
            ended = f"killed after {message.max_output} characters of output"
        self._finished(
            message, code, timed_out=timed_out, truncated=truncated.is_set(), error=ended
        )

    async def _pump(
        self,
        message: DevRun,
        stream: asyncio.StreamReader,
        name: str,
        budget: list[int],
        truncated: asyncio.Event,
    ) -> None:
        while True:
            data = await stream.read(READ_SIZE)
            if not data:
                return
            if budget[0] <= 0:
                truncated.set()
                return
            text = data.decode(errors="replace")[: budget[0]]
            budget[0] -= len(text)
            self._outbox.add(
                DevCommandOutput(
                    seq=1,
                    task_id=message.task_id,
                    command_id=message.command_id,
                    stream="stdout" if name == "stdout" else "stderr",
                    text=text,
                )
            )
            if budget[0] <= 0:
                truncated.set()
                return

    def _finished(
        self,
        message: DevRun,
        exit_code: int | None,
        *,
        timed_out: bool = False,
        truncated: bool = False,
        error: str | None = None,
    ) -> None:
        self._outbox.add(
            DevCommandFinished(
                seq=1,
                task_id=message.task_id,
                command_id=message.command_id,
                exit_code=exit_code,
                timed_out=timed_out,
                truncated=truncated,
                error=error,
            )
        )


def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill the command and everything it started (its own process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _list_directory(directory: Path) -> tuple[list[dict[str, object]], bool, str | None]:
    try:
        names = sorted(os.listdir(directory))
    except OSError as error:
        return [], False, f"cannot list {directory}: {error.strerror or error}"
    entries: list[dict[str, object]] = []
    for name in names[:MAX_ENTRIES]:
        try:
            info = os.lstat(directory / name)
        except OSError:
            continue
        kind = (
            "dir"
            if stat.S_ISDIR(info.st_mode)
            else "link"
            if stat.S_ISLNK(info.st_mode)
            else "file"
        )
        entries.append({"name": name[:500], "kind": kind, "size": info.st_size})
    return entries, len(names) > MAX_ENTRIES, None
