"""The agent's reaper: a small process that outlives the agent to end its steps' processes.

The agent writes `+PGID` and `-PGID` lines to the reaper's standard input as steps start and
end process groups. When that input closes, the agent has exited or died (even by SIGKILL,
which no handler sees), and the reaper kills every process group still listed, then exits.

Run as `python -m testfleet.agent.reaper`; it ignores SIGINT and SIGTERM so that a signal to
the agent's process group does not take it down first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


def main() -> None:
    """Read the agent's process groups until it is gone; then kill those left."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin:
        sign, number = line[:1], line[1:].strip()
        if not number.isdigit():
            continue
        if sign == "+":
            groups.add(int(number))
        elif sign == "-":
            groups.discard(int(number))
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


if __name__ == "__main__":
    main()
