"""Artifact paths and globs: what a step may declare, and how files are named in storage.

Pure checks, shared by the hub (a descriptor's `artifacts`) and the agent (files it uploads).
"""

from __future__ import annotations

from pathlib import PurePosixPath

MAX_GLOBS = 50
MAX_PATH = 1000


def glob_problem(pattern: str) -> str | None:
    """Why `pattern` may not be an artifact glob (None: it may): globs are relative to the
    task's working directory and may not climb out of it."""
    if not pattern or not pattern.strip():
        return "an artifact glob may not be empty"
    if len(pattern) > MAX_PATH:
        return f"an artifact glob may be at most {MAX_PATH} characters"
    if "\\" in pattern or "\0" in pattern:
        return f"{pattern!r}: use '/' between directories (no backslashes or NUL)"
    if pattern.startswith("/") or pattern.startswith("~"):
        return f"{pattern!r} is absolute; artifact globs are relative to the task's directory"
    if ".." in PurePosixPath(pattern).parts:
        return f"{pattern!r} escapes the task's working directory ('..')"
    return None


def path_problem(path: str) -> str | None:
    """Why `path` may not name an uploaded artifact (None: it may): a relative POSIX path
    inside the task's directory, without '.', '..' or empty parts."""
    if not path or len(path) > MAX_PATH:
        return f"an artifact path is 1-{MAX_PATH} characters"
    if path.startswith("/") or "\\" in path or "\0" in path:
        return f"{path!r} must be a relative path with '/' between directories"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return f"{path!r} must not contain empty, '.' or '..' parts"
    return None
