"""The process groups an agent's steps start, ended even when the agent dies.

While the agent runs, each step's process group is known to the reaper (`reaper.py`), which
kills the ones left when the agent goes, however it goes, and to a state file, from which the
next agent of the same name and hub ends what an earlier one left (were the reaper killed
with it). A group is only killed while its leader is the process that was recorded (same
start time), never a recycled pid.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

_log = logging.getLogger(__name__)


def default_state_dir(hub_url: str, name: str) -> Path:
    """Where an agent keeps its state: per agent name and hub, under $XDG_STATE_HOME."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    key = hashlib.sha256(f"{hub_url}\n{name}".encode()).hexdigest()[:12]
    return Path(base) / "testfleet" / f"agent-{name}-{key}"


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (field 3 onwards)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid: int) -> int | None:
    """The start time of a process (clock ticks since boot), or None if it is gone."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def group_started_by(pgid: int, leader_started: int) -> bool:
    """Whether processes of group `pgid` remain that started no earlier than its recorded
    leader did (the leader may have exited, its children not)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(entry.name)
        if fields and int(fields[2]) == pgid and int(fields[19]) >= leader_started:
            return True
    return False


class ProcessGuard:
    """Tracks the process groups of this agent's steps (a `steps.base.ProcessTracker`)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_file = state_dir / "processes.json"
        self._groups: dict[int, int | None] = {}
        self._reaper: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """End what an earlier agent left, then start the reaper."""
        self.state_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._clean_up_earlier()
        self._reaper = subprocess.Popen(
            [sys.executable, "-m", "testfleet.agent.reaper"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._save()

    def stop(self) -> None:
        """The agent is leaving: the reaper ends what is left, and the state is cleared."""
        if self._reaper is not None and self._reaper.stdin is not None:
            with contextlib.suppress(OSError):
                self._reaper.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._reaper.wait(5)
        self._groups.clear()
        with contextlib.suppress(OSError):
            self.state_file.unlink()

    def started(self, pgid: int) -> None:
        """A step started a process group."""
        self._groups[pgid] = start_time(pgid)
        self._tell(f"+{pgid}\n")
        self._save()

    def ended(self, pgid: int) -> None:
        """A step's process group is gone."""
        self._groups.pop(pgid, None)
        self._tell(f"-{pgid}\n")
        self._save()

    def _tell(self, line: str) -> None:
        if self._reaper is None or self._reaper.stdin is None:
            return
        try:
            self._reaper.stdin.write(line.encode())
            self._reaper.stdin.flush()
        except OSError:
            _log.warning("the reaper is gone; steps' processes are ended at the next start")

    def _save(self) -> None:
        state = {
            "agent_pid": os.getpid(),
            "agent_started": start_time(os.getpid()),
            "groups": {str(pgid): started for pgid, started in self._groups.items()},
        }
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(self.state_file)

    def _clean_up_earlier(self) -> None:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return
        pid, started = state.get("agent_pid"), state.get("agent_started")
        if isinstance(pid, int) and started is not None and start_time(pid) == started:
            return  # that agent still runs: its processes are its own
        for pgid_text, leader_started in dict(state.get("groups", {})).items():
            pgid = int(pgid_text)
            if leader_started is not None and group_started_by(pgid, leader_started):
                _log.warning("ending process group %d left by an earlier agent", pgid)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
