"""Prometheus metrics of one hub (a registry per hub, so several can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class HubMetrics:
    """The counters and gauges `/metrics` exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs_submitted = Counter(
            "testfleet_jobs_submitted_total", "Jobs submitted.", registry=self.registry
        )
        self.jobs_finished = Counter(
            "testfleet_jobs_finished_total",
            "Jobs finished, by final state.",
            ["state"],
            registry=self.registry,
        )
        self.events_stored = Counter(
            "testfleet_agent_events_stored_total",
            "Agent events stored (duplicates not counted).",
            registry=self.registry,
        )
        self.relay_messages = Counter(
            "testfleet_hub_notifications_total",
            "Notifications between hubs sharing PostgreSQL, by direction, kind and channel "
            "(hub: one hub's own channel; broadcast: every hub's).",
            ["direction", "kind", "channel"],
            registry=self.registry,
        )
        self.relay_unneeded = Counter(
            "testfleet_hub_notifications_unneeded_total",
            "Notifications received that concerned nothing on this hub (for every hub, or "
            "for an agent or job that had moved on), by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.agent_errors = Counter(
            "testfleet_agent_messages_refused_total",
            "Agent messages answered with ERROR.",
            registry=self.registry,
        )
        self.agents_lost = Counter(
            "testfleet_agents_lost_total",
            "Agents this hub declared lost.",
            registry=self.registry,
        )
        self.agents_connected = Gauge(
            "testfleet_agents_connected", "Agents connected to this hub.", registry=self.registry
        )
        self.running_jobs = Gauge(
            "testfleet_jobs_running", "Jobs this hub is running.", registry=self.registry
        )
        self.loop_lag = Histogram(
            "testfleet_event_loop_lag_seconds",
            "How late the hub's event loop ran a task due now (a stall, when large).",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.gc_pause = Histogram(
            "testfleet_gc_pause_seconds",
            "How long each of the interpreter's garbage collections stopped the hub.",
            ["generation"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "testfleet_http_request_seconds",
            "HTTP request duration by route.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.coverage_parts = Counter(
            "testfleet_coverage_parts_total",
            "Coverage parts (COVERAGE_DATA_PART) stored.",
            registry=self.registry,
        )
        self.coverage_part_seconds = Histogram(
            "testfleet_coverage_part_seconds",
            "Time to store a coverage part, from its frame read to its commit.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.coverage_refused = Counter(
            "testfleet_coverage_messages_refused_total",
            "Probe messages answered with ERROR.",
            registry=self.registry,
        )
        self.coverage_probes = Gauge(
            "testfleet_coverage_probes_connected",
            "Coverage probes connected to this hub.",
            registry=self.registry,
        )
