"""coverage.py, measuring the application's own modules; read out in deltas.

Each `collect()` returns the lines executed since the previous one (by file and coverage.py
context) and empties coverage.py's in-memory data, so memory stays flat however long the
application runs. Contexts name tests: `switch_context` is process-wide in coverage.py, so
concurrent requests of different tests are attributed to the last one named.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import coverage
from coverage.data import CoverageData

Arc = tuple[int, int]


@dataclass
class Executed:
    """What ran in one file under one context: raw line numbers, and arcs when branches
    are measured (as coverage.py recorded them)."""

    lines: set[int] = field(default_factory=set)
    arcs: set[Arc] = field(default_factory=set)

    def update(self, other: Executed) -> None:
        """Add what `other` ran."""
        self.lines |= other.lines
        self.arcs |= other.arcs


Hits = dict[str, dict[str, Executed]]
"""What ran: file -> coverage.py context -> lines (and arcs)."""

_QUIET = ["no-data-collected", "module-not-measured", "module-not-imported", "no-ctracer"]


class Meter:
    """One coverage.py measurement of the modules below `roots` (minus `omit`)."""

    def __init__(
        self, roots: Iterable[Path], omit: Iterable[Path] = (), *, branch: bool = False
    ) -> None:
        include = [f"{root.resolve()}{'' if root.is_file() else '/*'}" for root in roots]
        self.cov = coverage.Coverage(
            data_file=None,
            include=include,
            omit=[f"{p.resolve()}/*" for p in omit],
            branch=branch,
        )
        self.branch = branch
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
        """What ran since the last call, by file and context."""
        with self._lock:
            data = self.cov.get_data()
            contexts = sorted(data.measured_contexts())
            hits: Hits = {}
            for filename in data.measured_files():
                if len(contexts) <= 1:
                    ran = self._executed(data, filename)
                    if ran.lines or ran.arcs:
                        hits[filename] = {contexts[0] if contexts else "": ran}
                    continue
                by_context = hits.setdefault(filename, {})
                if not self.branch:
                    for line, names in data.contexts_by_lineno(filename).items():
                        for name in names:
                            by_context.setdefault(name, Executed()).lines.add(line)
                    continue
                for name in contexts:
                    data.set_query_context(name)
                    ran = self._executed(data, filename)
                    if ran.lines or ran.arcs:
                        by_context[name] = ran
                data.set_query_contexts(None)
            data.erase()
            return {name: ran for name, ran in hits.items() if ran}

    def _executed(self, data: CoverageData, filename: str) -> Executed:
        lines = set(data.lines(filename) or ())
        arcs = set(data.arcs(filename) or ()) if self.branch else set()
        return Executed(lines, arcs)
