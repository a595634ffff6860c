"""The runners of the jobs this hub runs, by job id."""

from __future__ import annotations

from typing import Protocol


class Runner(Protocol):
    """What other services may do with a job's runner."""

    def request_stop(self) -> None:
        """Ask the runner to stop the job at its next wait."""


class RunnerRegistry:
    """Which jobs run on this hub; the scheduler adds and removes them."""

    def __init__(self) -> None:
        self._runners: dict[int, Runner] = {}

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._runners

    def __len__(self) -> int:
        return len(self._runners)

    def ids(self) -> list[int]:
        """The ids of the jobs running here."""
        return list(self._runners)

    def get(self, job_id: int) -> Runner | None:
        """The runner of a job, if it runs here."""
        return self._runners.get(job_id)

    def add(self, job_id: int, runner: Runner) -> None:
        """A runner started."""
        self._runners[job_id] = runner

    def remove(self, job_id: int) -> None:
        """A runner ended."""
        self._runners.pop(job_id, None)
