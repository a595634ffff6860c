"""One developer-mode WebSocket: commands in, `{"type", "what", "data"}` messages out.

An operator's socket joins the job's session (or is refused, naming who holds the job); a
viewer's only watches. The channel follows the job's events (pauses, resumes, steps, the
output of commands) and sends the status whenever it changes; it closes with a message when
the job ends or the session is ended elsewhere. Bad frames are answered, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from testfleet.hub.auth import OPERATE, Principal
from testfleet.hub.devmode.messages import (
    COMMANDS,
    EVENT_WHAT,
    FOLLOWED,
    MAX_COMMAND,
    MAX_FRAME,
    READ_ONLY,
    REFRESH,
    Bad,
    flag_argument,
)
from testfleet.hub.devmode.service import DeveloperMode
from testfleet.hub.live.job_feed import Ended, JobFeeds
from testfleet.store import devmode as devmode_store

_log = logging.getLogger(__name__)


class DeveloperChannel:
    """Serves one developer-mode WebSocket of job `job_id`."""

    def __init__(
        self,
        socket: WebSocket,
        mode: DeveloperMode,
        feeds: JobFeeds,
        job_id: int,
        who: Principal,
    ) -> None:
        self.socket = socket
        self.mode = mode
        self.feeds = feeds
        self.job_id = job_id
        self.who = who
        self.control = who.role in OPERATE
        self._status: dict[str, Any] | None = None
        self._closing = False
        self._sending = asyncio.Lock()

    async def send(self, kind: str, what: str, data: dict[str, Any]) -> None:
        """One message to the browser."""
        text = json.dumps({"type": kind, "what": what, "data": data}, default=str)
        async with self._sending:
            if self._closing:
                return
            try:
                await self.socket.send_text(text)
            except Exception:  # the browser has gone (or the socket is closing): stop talking
                self._closing = True

    async def close(self, code: int = 1000) -> None:
        """Close the socket (once); nothing more is sent."""
        async with self._sending:
            if self._closing:
                return
            self._closing = True
            with contextlib.suppress(Exception):
                await self.socket.close(code=code)

    async def serve(self) -> None:
        """From accept to close."""
        await self.socket.accept()
        attached = False
        created = False
        if self.control:
            result = await self.mode.attach(self.job_id, self.who)
            if isinstance(result, devmode_store.NotRunning):
                state = result.job.state if result.job is not None else None
                message = (
                    f"job {self.job_id} does not exist"
                    if state is None
                    else f"job {self.job_id} is {state}: developer mode needs a running job"
                )
                await self._refuse("job_not_running", message, job_state=state)
                return
            if isinstance(result, devmode_store.Held):
                holder = result.session.developer_name
                await self._refuse(
                    "developer_session_held",
                    f"{holder} holds job {self.job_id} in developer mode since "
                    f"{result.session.started_at.isoformat()}; only one developer at a time",
                    developer_name=holder,
                )
                return
            attached, created = True, result.created
        follower: asyncio.Task[None] | None = None
        try:
            if attached:
                what = "session_started" if created else "session_joined"
                await self.send("info", what, {"developer_name": self.who.name})
            else:
                await self.send(
                    "info",
                    "read_only",
                    {"message": f"role {self.who.role!r} sees the status; control needs operator"},
                )
            after = await self.mode.last_event_id(self.job_id)
            await self._send_status(force=True)
            follower = asyncio.create_task(self._follow(after), name=f"dev-{self.job_id}-follow")
            await self._read()
        finally:
            if follower is not None:
                follower.cancel()
                with contextlib.suppress(BaseException):
                    await follower
            if attached:
                with contextlib.suppress(Exception):
                    await self.mode.detach(self.job_id, self.who)
            await self.close()

    async def _refuse(self, what: str, message: str, **data: Any) -> None:
        await self.send("error", what, {"message": message, **data})
        await self.close(1008)

    async def _read(self) -> None:
        while not self._closing:
            try:
                message = await self.socket.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                await self.send("error", "bad_frame", {"message": "send JSON text frames"})
                continue
            try:
                await self._handle(text)
            except Bad as bad:
                await self.send(bad.kind, bad.what, bad.data)
            except Exception:
                _log.exception("developer mode, job %d: a command failed", self.job_id)
                await self.send("error", "internal", {"message": "the hub could not do that"})

    async def _handle(self, text: str) -> None:
        if len(text) > MAX_FRAME:
            raise Bad("error", "too_large", f"a message may be at most {MAX_FRAME} characters")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as error:
            raise Bad("error", "bad_json", f"not JSON: {error}") from None
        if not isinstance(data, dict) or not isinstance(data.get("cmd"), str):
            raise Bad("error", "bad_message", 'send an object {"cmd": NAME, ...}')
        cmd = data["cmd"]
        if cmd not in COMMANDS:
            raise Bad(
                "warning",
                "unknown_command",
                f"unknown command {cmd[:100]!r}; allowed: {', '.join(COMMANDS)}",
                allowed=list(COMMANDS),
            )
        if not self.control and cmd not in READ_ONLY:
            raise Bad(
                "error", "read_only", f"role {self.who.role!r} may not {cmd}; it needs operator"
            )
        await getattr(self, f"_cmd_{cmd}")(data)

    # ---- commands --------------------------------------------------------------------------------

    async def _cmd_status(self, data: dict[str, Any]) -> None:
        await self._send_status(force=True)

    async def _set(self, **changes: Any) -> None:
        session = await self.mode.set_flags(self.job_id, self.who, **changes)
        if session is None:
            raise Bad("error", "not_holder", "the session has ended; reload to start it again")
        await self._send_status(force=True)

    async def _cmd_set_pause_at_test(self, data: dict[str, Any]) -> None:
        name = data.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > 200):
            raise Bad("error", "bad_argument", "name: a step name (at most 200 characters)")
        await self._set(pause_at=name or None)

    async def _cmd_set_pause_on_failure(self, data: dict[str, Any]) -> None:
        await self._set(pause_on_failure=flag_argument(data))

    async def _cmd_set_pause_on_next_command(self, data: dict[str, Any]) -> None:
        await self._set(pause_on_next=flag_argument(data))

    async def _cmd_resume_test_execution(self, data: dict[str, Any]) -> None:
        options = data.get("options") or {}
        if not isinstance(options, dict):
            raise Bad("error", "bad_argument", "options: an object")
        ignore = options.get("ignore_failure", False)
        if not isinstance(ignore, bool):
            raise Bad("error", "bad_argument", "options/ignore_failure: true or false")
        count = await self.mode.resume(self.job_id, self.who, ignore_failure=ignore)
        if count == 0:
            raise Bad("warning", "not_paused", "the job is not paused; nothing was resumed")
        await self.send("info", "resuming", {"tasks": count, "ignore_failure": ignore})

    async def _cmd_quit_development_session(self, data: dict[str, Any]) -> None:
        cancel = data.get("cancel_job", False)
        if not isinstance(cancel, bool):
            raise Bad("error", "bad_argument", "cancel_job: true or false")
        if not await self.mode.quit(self.job_id, self.who, cancel_job=cancel):
            raise Bad("warning", "no_session", "you hold no developer session of this job")
        await self.send(
            "info",
            "session_ended",
            {"message": "developer session ended" + (", job cancelled" if cancel else "")},
        )
        await self.close()

    async def _task(self, data: dict[str, Any]) -> Any:
        task_id = data.get("task_id")
        if task_id is not None and (not isinstance(task_id, int) or isinstance(task_id, bool)):
            raise Bad("error", "bad_argument", "task_id: a task's id")
        found = await self.mode.paused_task(self.job_id, task_id)
        if isinstance(found, str):
            raise Bad("warning", "not_paused", found + "; pause it first")
        return found

    async def _cmd_list_directory(self, data: dict[str, Any]) -> None:
        task = await self._task(data)
        request_id = await self.mode.list_directory(self.job_id, task)
        await self.send("info", "listing_requested", {"request_id": request_id})

    async def _cmd_run_command(self, data: dict[str, Any]) -> None:
        command = data.get("command")
        if not isinstance(command, str) or not command.strip() or len(command) > MAX_COMMAND:
            raise Bad(
                "error", "bad_argument", f"command: a shell command of 1..{MAX_COMMAND} characters"
            )
        task = await self._task(data)
        command_id = await self.mode.run_command(self.job_id, self.who, task, command)
        await self.send("info", "command_sent", {"command_id": command_id, "command": command})

    async def _cmd_log(self, data: dict[str, Any]) -> None:
        lines = data.get("lines", 50)
        if not isinstance(lines, int) or isinstance(lines, bool) or not 1 <= lines <= 200:
            raise Bad("error", "bad_argument", "lines: 1..200")
        status = await self.mode.status(self.job_id)
        task_id = data.get("task_id")
        if task_id is None and status["tasks"]:
            paused = [t for t in status["tasks"] if t["paused"]]
            task_id = (paused or status["tasks"])[0]["task_id"]
        if not isinstance(task_id, int):
            raise Bad("warning", "no_task", "the job has no running task")
        text = await self.mode.last_log(self.job_id, task_id, lines)
        await self.send("info", "log", {"task_id": task_id, "lines": text})

    async def _cmd_screenshot(self, data: dict[str, Any]) -> None:
        task = await self._task(data)
        request_id = await self.mode.screenshot(self.job_id, task)
        await self.send("info", "screenshot_requested", {"request_id": request_id})

    # ---- following the job -----------------------------------------------------------------------

    async def _follow(self, after: int) -> None:
        try:
            async for item in self.feeds.follow(self.job_id, after, FOLLOWED, wait=REFRESH):
                if isinstance(item, Ended):
                    await self.mode.job_ended(self.job_id, item.state)
                    await self._send_status()
                    await self.send(
                        "info",
                        "job_finished",
                        {
                            "state": item.state,
                            "message": f"job {self.job_id} {item.state}; "
                            "the developer session is closed",
                        },
                    )
                    await self.close()
                    return
                for event in item:
                    if event.kind == "developer_session_ended" and self.control:
                        await self.send("info", "session_ended", event.data)
                        await self.close()
                        return
                    if event.kind == "dev_screenshot":
                        await self._screenshot_taken(event.task_id, event.data)
                        continue
                    if event.kind.startswith("developer_agent_"):
                        await self._agent_news(event.kind, event.data)
                        continue
                    what = EVENT_WHAT.get(event.kind)
                    if what is not None:
                        await self.send(
                            "info",
                            what,
                            {**event.data, "task_id": event.task_id, "at": event.at.isoformat()},
                        )
                await self._send_status()
        except (WebSocketDisconnect, RuntimeError, ConnectionError):
            return
        except Exception:
            _log.exception("developer mode, job %d: following failed", self.job_id)
            await self.send("error", "follow_failed", {"message": "the hub lost the job"})
            await self.close(1011)

    async def _screenshot_taken(self, task_id: int | None, data: dict[str, Any]) -> None:
        if data.get("png_base64"):
            await self.send(
                "info",
                "screenshot",
                {
                    "task_id": task_id,
                    "request_id": data.get("request_id"),
                    "png_base64": data["png_base64"],
                },
            )
        else:
            await self.send(
                "warning",
                "no_screenshot",
                {"task_id": task_id, "message": data.get("error") or "no screenshot"},
            )

    async def _agent_news(self, kind: str, data: dict[str, Any]) -> None:
        agent = data.get("agent")
        if kind == "developer_agent_disconnected":
            await self.send(
                "warning",
                "agent_disconnected",
                {
                    "agent": agent,
                    "message": f"agent {agent} lost its connection; its tasks keep their "
                    "pause while it comes back, and end incomplete if it does not",
                },
            )
            return
        status = await self.mode.status(self.job_id)
        paused = [t["paused"] for t in status["tasks"] if t["agent"] == agent and t["paused"]]
        await self.send(
            "info",
            "agent_reconnected",
            {
                "agent": agent,
                "paused": paused[0] if paused else None,
                "message": f"agent {agent} is back"
                + (f"; still paused: {paused[0]}" if paused else ""),
            },
        )

    async def _send_status(self, *, force: bool = False) -> None:
        status = await self.mode.status(self.job_id)
        if force or status != self._status:
            self._status = status
            await self.send("info", "status", status)
