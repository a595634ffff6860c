"""The gateway's Prometheus metrics, in the hub's registry (`/metrics`)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge


class GatewayMetrics:
    """Sessions created or refused, commands forwarded, requests waiting."""

    def __init__(self, registry: CollectorRegistry, waiting: Callable[[], int]) -> None:
        self.sessions = Counter(
            "testfleet_webdriver_sessions_total",
            "New-session requests through the gateway, by outcome (created, failed).",
            ["outcome"],
            registry=registry,
        )
        self.commands = Counter(
            "testfleet_webdriver_commands_total",
            "Commands forwarded to nodes by this hub.",
            registry=registry,
        )
        self.waiting = Gauge(
            "testfleet_device_requests_waiting",
            "Device requests (jobs' tests and WebDriver sessions) queued on this hub.",
            registry=registry,
        )
        self.waiting.set_function(lambda: float(waiting()))
