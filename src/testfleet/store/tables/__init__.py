"""The schema. Migrations in `migrations/versions` create exactly this (a test compares).

One module per part: `core` (with the `metadata`), `sessions` (the WebDriver gateway),
`plans` (test plans and the sync service), `coverage`, `results`, `devmode` (developer
mode). Importing this package
registers every table in `metadata`."""

from __future__ import annotations

from testfleet.store.tables.core import (
    agents,
    devices,
    events,
    hubs,
    idempotency_keys,
    job_runs,
    job_tags,
    job_tests,
    jobs,
    metadata,
    steps,
    tasks,
    tokens,
)
from testfleet.store.tables.coverage import (
    coverage_actions,
    coverage_builds,
    coverage_classes,
    coverage_functions,
    coverage_hits,
    coverage_parts,
    coverage_probes,
    coverage_sessions,
)
from testfleet.store.tables.devmode import developer_commands, developer_sessions
from testfleet.store.tables.plans import (
    plan_builds,
    plan_instances,
    plan_outputs,
    plan_sources,
    plan_tasks,
    plans,
    sync_counters,
    sync_entries,
    sync_messages,
)
from testfleet.store.tables.results import (
    artifacts,
    event_cursors,
    job_deletions,
    schedules,
    test_cases,
    webhook_attempts,
    webhook_deliveries,
    webhooks,
)
from testfleet.store.tables.sessions import (
    driver_sessions,
    session_commands,
    session_screenshots,
)

__all__ = [
    "agents",
    "artifacts",
    "coverage_actions",
    "coverage_builds",
    "coverage_classes",
    "coverage_functions",
    "coverage_hits",
    "coverage_parts",
    "coverage_probes",
    "coverage_sessions",
    "developer_commands",
    "developer_sessions",
    "devices",
    "driver_sessions",
    "event_cursors",
    "events",
    "hubs",
    "idempotency_keys",
    "job_deletions",
    "job_runs",
    "job_tags",
    "job_tests",
    "jobs",
    "metadata",
    "plan_builds",
    "plan_instances",
    "plan_outputs",
    "plan_sources",
    "plan_tasks",
    "plans",
    "schedules",
    "session_commands",
    "session_screenshots",
    "steps",
    "sync_counters",
    "sync_entries",
    "sync_messages",
    "tasks",
    "test_cases",
    "tokens",
    "webhook_attempts",
    "webhook_deliveries",
    "webhooks",
]
