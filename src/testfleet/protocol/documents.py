"""Bounds on decoded JSON/YAML documents, checked before anything is built from them.

A document's size is counted as it would be written out: a YAML alias counts each time it is
used, so a small text whose aliases expand to millions of nodes is refused after the first
`max_nodes`, in time proportional to the limit, not to the expansion.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from testfleet.protocol.types import INT64_MAX


@dataclass(frozen=True)
class DocumentLimits:
    """How big a document may be."""

    max_depth: int = 32
    max_nodes: int = 100_000
    max_text: int = 4_000_000
    """Characters of all strings and keys together."""
    nul_allowed: bool = False
    """Whether strings may hold NUL characters (log output may; stored text may not)."""


@dataclass(frozen=True)
class DocumentProblem(ValueError):
    """Why a document was refused, and where (a JSON pointer)."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location or '/'}: {self.message}"


def _pointer(path: tuple[str | int, ...]) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else ""


def _children(value: Any) -> Iterator[tuple[str | int, Any]]:
    if isinstance(value, dict):
        yield from value.items()
    elif isinstance(value, list | tuple):
        yield from enumerate(value)


def check_document(document: Any, limits: DocumentLimits = DocumentLimits()) -> None:
    """Raise DocumentProblem if `document` is nested too deeply, has too many nodes or too
    much text once expanded, holds a NUL character, or an integer beyond 64 bits."""
    nodes = 0
    text = 0
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        nodes += 1
        if nodes > limits.max_nodes:
            raise DocumentProblem(
                _pointer(path), f"the document has more than {limits.max_nodes} values"
            )
        if len(path) > limits.max_depth:
            raise DocumentProblem(
                _pointer(path), f"nested more than {limits.max_depth} levels deep"
            )
        if isinstance(value, str):
            text += len(value)
            if not limits.nul_allowed and "\x00" in value:
                raise DocumentProblem(_pointer(path), "text may not contain NUL characters")
        elif isinstance(value, bool | float) or value is None:
            pass
        elif isinstance(value, int):
            if not -INT64_MAX - 1 <= value <= INT64_MAX:
                raise DocumentProblem(_pointer(path), "integers are limited to 64 bits")
        elif isinstance(value, dict | list | tuple):
            for key, child in _children(value):
                if isinstance(key, str):
                    text += len(key)
                    if "\x00" in key:
                        raise DocumentProblem(
                            _pointer((*path, key)), "keys may not contain NUL characters"
                        )
                stack.append(((*path, key), child))
        else:
            raise DocumentProblem(_pointer(path), f"a {type(value).__name__} is not a JSON value")
        if text > limits.max_text:
            raise DocumentProblem(
                _pointer(path), f"the document has more than {limits.max_text} characters of text"
            )
