"""coverage.py, measuring the application's own modules; read out in deltas.

Each `collect()` returns the lines executed since the previous one (by file and coverage.py
context) and empties coverage.py's in-memory data, so memory stays flat however long the
application runs. Contexts name tests: `switch_context` is process-wide in coverage.py, so
concurrent requests of different tests are attributed to the last one named.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

import coverage

Hits = dict[str, dict[str, set[int]]]
"""Executed lines: file -> coverage.py context -> raw line numbers."""

_QUIET = ["no-data-collected", "module-not-measured", "module-not-imported", "no-ctracer"]


class Meter:
    """One coverage.py measurement of the modules below `roots` (minus `omit`)."""

    def __init__(self, roots: Iterable[Path], omit: Iterable[Path] = ()) -> None:
        include = [f"{root.resolve()}{'' if root.is_file() else '/*'}" for root in roots]
        self.cov = coverage.Coverage(
            data_file=None,
            include=include,
            omit=[f"{p.resolve()}/*" for p in omit],
        )
        self.cov.set_option("run:disable_warnings", _QUIET)
        self._lock = threading.Lock()
        self._context = ""
        self.started = False

    def start(self) -> None:
        """Start measuring (threads started from now on are measured too)."""
        self.cov.start()
        self.started = True

    def stop(self) -> None:
        """Stop measuring."""
        if self.started:
            self.cov.stop()
            self.started = False

    @property
    def context(self) -> str:
        """The coverage.py context lines are recorded under now ("" for none)."""
        return self._context

    def switch_context(self, name: str) -> str:
        """Record lines under context `name` from now on; returns the previous one."""
        with self._lock:
            previous, self._context = self._context, name
            if self.started:
                self.cov.switch_context(name)
            return previous

    def collect(self) -> Hits:
        """The lines executed since the last call, by file and context."""
        with self._lock:
            data = self.cov.get_data()
            contexts = data.measured_contexts()
            hits: Hits = {}
            for filename in data.measured_files():
                if len(contexts) <= 1:
                    lines = data.lines(filename) or []
                    if lines:
                        hits[filename] = {next(iter(contexts), ""): set(lines)}
                    continue
                by_context: dict[str, set[int]] = {}
                for line, names in data.contexts_by_lineno(filename).items():
                    for name in names:
                        by_context.setdefault(name, set()).add(line)
                if by_context:
                    hits[filename] = by_context
            data.erase()
            return hits
