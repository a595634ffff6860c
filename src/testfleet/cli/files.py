"""Read a job descriptor file (JSON or YAML, told apart by content; `-` is stdin)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from testfleet.cli.output import UserInputError

MAX_BYTES = 10 * 1024 * 1024


class DescriptorFileError(UserInputError):
    """The descriptor file cannot be read or parsed; the message names the file and the place."""


@dataclass(frozen=True)
class DescriptorText:
    """A descriptor as written (sent to the hub unchanged) and what it parsed to."""

    source: str
    text: str
    data: dict[str, Any]
    format: str


def read_descriptor(path: str, stdin: TextIO | None = None) -> DescriptorText:
    """Read and parse the file at `path` (or stdin for `-`); raise `DescriptorFileError`."""
    source = "<stdin>" if path == "-" else path
    text = _read(path, stdin if stdin is not None else sys.stdin)
    return parse_descriptor(text, source)


def parse_descriptor(text: str, source: str) -> DescriptorText:
    """Parse a descriptor text: a JSON or YAML mapping."""
    if not text.strip():
        raise DescriptorFileError(f"{source} is empty; expected a job descriptor (JSON or YAML)")
    data: Any
    try:
        data, kind = json.loads(text), "json"
    except json.JSONDecodeError as json_error:
        looks_like_json = text.lstrip().startswith(("{", "["))
        try:
            data, kind = yaml.safe_load(text), "yaml"
        except yaml.YAMLError as yaml_error:
            if looks_like_json:
                raise DescriptorFileError(
                    f"{source} is not valid JSON: {json_error.msg} "
                    f"(line {json_error.lineno}, column {json_error.colno})"
                ) from None
            raise DescriptorFileError(
                f"{source} is not valid YAML: {_yaml_problem(yaml_error)}"
            ) from None
    if not isinstance(data, dict):
        raise DescriptorFileError(
            f"{source} must hold a mapping (an object with name, tests, ...), not {_kind_of(data)}"
        )
    return DescriptorText(source, text, data, kind)


def _read(path: str, stdin: TextIO) -> str:
    if path == "-":
        text = stdin.read(MAX_BYTES + 1)
        if len(text) > MAX_BYTES:
            raise DescriptorFileError(f"stdin holds more than {MAX_BYTES // 1024 // 1024} MiB")
        return text
    file = Path(path)
    try:
        if file.is_dir():
            raise DescriptorFileError(f"{path} is a directory, not a descriptor file")
        if file.stat().st_size > MAX_BYTES:
            raise DescriptorFileError(f"{path} is larger than {MAX_BYTES // 1024 // 1024} MiB")
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DescriptorFileError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise DescriptorFileError(f"{path} is not UTF-8 text") from None
    except OSError as error:
        raise DescriptorFileError(f"cannot read {path}: {error.strerror or error}") from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return str(problem)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"


def _kind_of(data: object) -> str:
    if data is None:
        return "nothing"
    if isinstance(data, list):
        return "a list"
    return f"a single value ({type(data).__name__})"
