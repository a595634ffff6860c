"""A process's peak resident memory over a stretch, for tests and benchmarks."""

from __future__ import annotations

import threading

import psutil


class PeakRss:
    """Samples a process's resident memory in a thread (every 10 ms); `peak` is the highest
    seen."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.base = self.process.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> int:
        """Stop sampling; the growth over the start, in bytes."""
        self._stop.set()
        self._thread.join(5)
        return self.peak - self.base
