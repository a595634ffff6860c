"""Where the CLI writes: stdout for results (plain JSON with --json), stderr for errors.

`reporting_errors()` turns the client's exceptions into a red message and an exit code, so no
user error ends in a traceback. The server commands may use these helpers too.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.text import Text

from testfleet.client import ApiError, ClientError, HubUnreachable

EXIT_OK = 0
EXIT_FAILED = 1
"""A failed or cancelled job, an unreachable hub, or an error the hub reported."""
EXIT_USAGE = 2
"""Bad input: a bad option or file, or a request the hub rejected as invalid (400, 422)."""
EXIT_INTERRUPTED = 130

_BAD_INPUT = frozenset({400, 422})
PIPE_WIDTH = 200

stdout = Console(highlight=False, soft_wrap=False)
if not stdout.is_terminal:
    stdout.width = PIPE_WIDTH  # a pipe or file: whole rows for grep, not 80-column wraps
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


class UserInputError(Exception):
    """Something the user gave us is wrong; the message says what (exit code 2)."""


def print_json(data: BaseModel | dict[str, Any] | list[Any]) -> None:
    """Write `data` as indented JSON on stdout, without colour, for scripts."""
    text = (
        data.model_dump_json(indent=2)
        if isinstance(data, BaseModel)
        else json.dumps(data, indent=2, default=str)
    )
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def print_line(text: str) -> None:
    """Write one plain line on stdout and flush it (for pipes and scripts)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def print_error(message: str, *details: str) -> None:
    """An error on stderr in red, with indented detail lines."""
    stderr.print(Text("error: ", style="bold red") + Text(message, style="red"))
    for detail in details:
        stderr.print(Text(f"  {detail}", style="red"))


def print_warning(message: str) -> None:
    """A warning on stderr in yellow."""
    stderr.print(Text("warning: ", style="bold yellow") + Text(message, style="yellow"))


def exit_code_for(error: Exception) -> int:
    """The exit code that reports `error`."""
    if isinstance(error, UserInputError):
        return EXIT_USAGE
    if isinstance(error, ApiError) and error.status in _BAD_INPUT:
        return EXIT_USAGE
    return EXIT_FAILED


def report(error: Exception) -> int:
    """Print `error` for a person and return its exit code."""
    if isinstance(error, ApiError):
        details = [f"at {item.location or '/'}: {item.message}" for item in error.errors]
        if error.status == 401:
            details.append("hint: pass a token with --token or TESTFLEET_TOKEN")
        print_error(f"{error.message} (HTTP {error.status} {error.code})", *details)
    elif isinstance(error, HubUnreachable):
        print_error(str(error), "hint: is the hub running? Point to it with --hub or TESTFLEET_HUB")
    else:
        print_error(str(error))
    return exit_code_for(error)


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Report client and input errors raised inside, then exit with their code."""
    try:
        yield
    except (ClientError, UserInputError) as error:
        raise typer.Exit(report(error)) from None


def write_text(text: str) -> None:
    """Write `text` on stdout as it is (no markup), ending with a newline."""
    sys.stdout.write(text if not text or text.endswith("\n") else text + "\n")
    sys.stdout.flush()
