"""Developer mode's channel vocabulary: the commands, the events followed, what is wrong."""

from __future__ import annotations

from typing import Any

MAX_FRAME = 64 * 1024
"""The largest command frame (characters)."""
MAX_COMMAND = 10_000
"""The longest shell command."""
REFRESH = 1.0
"""Seconds between looks at the status when nothing happens."""
COMMANDS = (
    "status",
    "set_pause_at_test",
    "set_pause_on_failure",
    "set_pause_on_next_command",
    "resume_test_execution",
    "quit_development_session",
    "list_directory",
    "log",
    "run_command",
    "screenshot",
)
READ_ONLY = frozenset({"status", "log"})
FOLLOWED = (
    "task_paused",
    "task_resumed",
    "step_started",
    "step_finished",
    "task_finished",
    "dev_listing",
    "dev_command_output",
    "dev_command_finished",
    "developer_command",
    "developer_session_ended",
    "developer_agent_disconnected",
    "developer_agent_reconnected",
    "dev_screenshot",
)
EVENT_WHAT = {
    "task_paused": "paused",
    "task_resumed": "resumed",
    "step_started": "step_started",
    "step_finished": "step_finished",
    "task_finished": "task_finished",
    "dev_listing": "listing",
    "dev_command_output": "command_output",
    "dev_command_finished": "command_finished",
    "developer_command": "command_started",
}


class Bad(Exception):
    """A command the channel answers with a warning or an error."""

    def __init__(self, kind: str, what: str, message: str, **data: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.what = what
        self.data = {"message": message, **data}


def flag_argument(data: dict[str, Any]) -> bool:
    """The `flag` of a command (true or false; anything else is a bad argument)."""
    flag = data.get("flag")
    if not isinstance(flag, bool):
        raise Bad("error", "bad_argument", "flag: true or false")
    return flag
