"""Global options anywhere on the command line, and help texts without type placeholders.

`testfleet job list --hub URL --json` works like `testfleet --hub URL --json job list`:
before Click parses, the global options are moved in front of the command (up to a `--`).
`testfleet agent` keeps its own --hub and --token.
"""

from __future__ import annotations

from typing import Any

WITH_VALUE = ("--hub", "--token", "--timeout")
FLAGS = ("--json",)
OWN_HUB_OPTIONS = frozenset({"agent"})
"""Commands with --hub/--token of their own."""


def hoist(args: list[str]) -> list[str]:
    """`args` (without the program name) with the global options first."""
    front: list[str] = []
    rest: list[str] = []
    command = next((a for a in args if not a.startswith("-")), None)
    movable = WITH_VALUE if command not in OWN_HUB_OPTIONS else ("--timeout",)
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest += args[index:]
            break
        name = arg.split("=", 1)[0]
        if name in movable and "=" in arg:
            front.append(arg)
        elif arg in movable and index + 1 < len(args):
            front += [arg, args[index + 1]]
            index += 1
        elif arg in FLAGS:
            front.append(arg)
        else:
            rest.append(arg)
        index += 1
    return front + rest


def _metavar(param: Any) -> str:
    """argparse's convention: the option's name in capitals (`--data-dir DATA_DIR`)."""
    return str(param.name).upper()


def clean_metavars(command: Any) -> None:
    """Give every option that takes a value a plain metavar instead of `<float range>`-style
    type placeholders, in the whole command tree."""
    for param in getattr(command, "params", []):
        is_option = getattr(param, "param_type_name", "") == "option"
        if is_option and not param.is_flag and param.metavar is None:
            param.metavar = _metavar(param)
    for sub in getattr(command, "commands", {}).values():
        clean_metavars(sub)
