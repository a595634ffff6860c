"""The hub's data directory: created private to its owner, and held by one hub at a time."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = "hub.lock"


class DataDirBusy(Exception):
    """Another process serves this data directory; the message names it."""


def prepare(path: Path) -> Path:
    """Create the data directory, readable by its owner only, if it does not exist yet."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@contextlib.contextmanager
def hold(path: Path, address: str) -> Iterator[None]:
    """Hold the data directory for as long as the block runs: a second hub or `testfleet up`
    on it is refused with the first one's address (SQLite has one writer per file)."""
    prepare(path)
    lock_path = path / LOCK_FILE
    descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock_path.read_text().strip() or "another process"
            raise DataDirBusy(
                f"the data directory {path} is in use by {holder}; stop that one, or give this "
                "one another --data-dir"
            ) from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{address} (pid {os.getpid()})\n".encode())
        yield
    finally:
        os.close(descriptor)
