"""The wire and API models and version constants: pure data, no I/O.

Every other part of testfleet may import this package; it imports nothing else of testfleet.
"""

from testfleet.protocol.durations import Duration, format_duration, parse_duration
from testfleet.protocol.states import AgentState, DeviceState, JobState, RunState
from testfleet.protocol.version import API_VERSION, WIRE_VERSION

__all__ = [
    "API_VERSION",
    "WIRE_VERSION",
    "AgentState",
    "DeviceState",
    "Duration",
    "JobState",
    "RunState",
    "format_duration",
    "parse_duration",
]
