"""An instance's run environment, read from the variables the runner sets, and its records.

`record_message` and `record_metric` write JSON lines to `run.out` and `metrics.out` in the
outputs directory (Testground's layout); messages go to stdout too.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _parse_params(env: Mapping[str, str]) -> dict[str, Any]:
    """The typed parameters (JSON from the runner), else the k=v|k=v strings."""
    typed = env.get("TESTFLEET_INSTANCE_PARAMS_JSON")
    if typed:
        value = json.loads(typed)
        if isinstance(value, dict):
            return value
    params: dict[str, Any] = {}
    for pair in env.get("TEST_INSTANCE_PARAMS", "").split("|"):
        key, sep, val = pair.partition("=")
        if sep and key:
            params[key] = val
    return params


@dataclass
class RunEnv:
    """Who this instance is and where it writes (`env` of a case function)."""

    test_plan: str
    test_case: str
    test_run: str
    test_instance_count: int
    test_group_id: str
    test_group_instance_count: int
    params: dict[str, Any]
    test_outputs_path: Path
    test_temp_path: Path
    test_start_time: str
    sync_url: str
    token: str | None
    global_seq: int
    group_seq: int
    outcome_path: Path | None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> RunEnv:
        """The run environment of this process; KeyError names a missing variable."""
        env = os.environ if env is None else env

        def need(name: str) -> str:
            try:
                return env[name]
            except KeyError:
                raise KeyError(f"{name} is not set: run this through a testfleet runner") from None

        outcome = env.get("TESTFLEET_OUTCOME_PATH")
        return cls(
            test_plan=need("TEST_PLAN"),
            test_case=need("TEST_CASE"),
            test_run=need("TEST_RUN"),
            test_instance_count=int(need("TEST_INSTANCE_COUNT")),
            test_group_id=need("TEST_GROUP_ID"),
            test_group_instance_count=int(need("TEST_GROUP_INSTANCE_COUNT")),
            params=_parse_params(env),
            test_outputs_path=Path(need("TEST_OUTPUTS_PATH")),
            test_temp_path=Path(env.get("TEST_TEMP_PATH") or need("TEST_OUTPUTS_PATH")),
            test_start_time=env.get("TEST_START_TIME", ""),
            sync_url=env.get("TESTFLEET_SYNC_URL", ""),
            token=env.get("TESTFLEET_TOKEN") or None,
            global_seq=int(env.get("TESTFLEET_GLOBAL_SEQ", "1")),
            group_seq=int(env.get("TESTFLEET_GROUP_SEQ", "1")),
            outcome_path=Path(outcome) if outcome else None,
        )

    def _append(self, name: str, record: dict[str, Any]) -> None:
        line = json.dumps(record, default=str) + "\n"
        with self._lock:
            self.test_outputs_path.mkdir(parents=True, exist_ok=True)
            with (self.test_outputs_path / name).open("a") as handle:
                handle.write(line)

    def record_event(self, kind: str, **data: Any) -> None:
        """Append an event to run.out."""
        self._append("run.out", {"ts": time.time_ns(), "event": {"type": kind, **data}})

    def record_message(self, message: str, *args: Any) -> None:
        """Log a message (printf-style arguments) to run.out and stdout."""
        text = message % args if args else message
        self.record_event("message", message=text)
        print(text, file=sys.stdout, flush=True)

    def record_metric(self, name: str, value: float, unit: str = "", **tags: Any) -> None:
        """Record a measurement in metrics.out."""
        self._append(
            "metrics.out",
            {"ts": time.time_ns(), "name": name, "value": value, "unit": unit, "tags": tags},
        )

    def record_outcome(self, outcome: str, error: str | None = None) -> None:
        """Write the outcome the runner reads (once; the first one stands)."""
        self.record_event(outcome, error=error, group=self.test_group_id, seq=self.global_seq)
        if self.outcome_path is None or self.outcome_path.exists():
            return
        staging = self.outcome_path.with_suffix(".tmp")
        staging.write_text(
            json.dumps({"outcome": outcome, "error": error, "at": datetime.now(UTC).isoformat()})
        )
        staging.replace(self.outcome_path)
