"""The hub at run time: builds every service with the collaborators it uses, starts and
stops them. The only module that knows them all (the routes reach services through it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from functools import partial
from typing import Any

from sqlalchemy.engine import make_url

from testfleet.hub.agents.connections import Connections
from testfleet.hub.agents.intake import Intake
from testfleet.hub.agents.liveness import LivenessWatch
from testfleet.hub.agents.session import AgentSessions
from testfleet.hub.allocator import DeviceAllocator
from testfleet.hub.artifacts.service import ArtifactLimits, ArtifactService
from testfleet.hub.artifacts.storage import DirectoryStorage
from testfleet.hub.config import HubConfig
from testfleet.hub.coverage.connections import ProbeConnections
from testfleet.hub.coverage.forward import Forwarding
from testfleet.hub.coverage.live import LiveBoard
from testfleet.hub.coverage.server import ProbeServer
from testfleet.hub.coverage.service import CoverageService
from testfleet.hub.coverage.steps import CoverageSteps
from testfleet.hub.delivery import Delivery
from testfleet.hub.devmode.link import DevLink
from testfleet.hub.devmode.service import DeveloperMode
from testfleet.hub.gateway import GatewayService
from testfleet.hub.jobs.context import RunnerDeps
from testfleet.hub.jobs.news import JobNews
from testfleet.hub.jobs.runner import JobRunner
from testfleet.hub.jobs.runners import RunnerRegistry
from testfleet.hub.jobs.scheduler import Scheduler
from testfleet.hub.jobs.service import JobService
from testfleet.hub.live.job_feed import JobFeeds
from testfleet.hub.live.lab_watch import LabWatch
from testfleet.hub.loopwatch import LoopWatch
from testfleet.hub.maintenance import Maintenance
from testfleet.hub.metrics import HubMetrics
from testfleet.hub.plans import JobPlans
from testfleet.hub.presence import HubPresence
from testfleet.hub.relay import Relay
from testfleet.hub.reports.service import ReportReader
from testfleet.hub.revocations import Revocations
from testfleet.hub.schedules.service import Schedules
from testfleet.hub.signals import Signals
from testfleet.hub.sync.service import SyncService, engine_for
from testfleet.hub.testplans.catalog import PlanCatalog
from testfleet.hub.testplans.runs import PlanRuns
from testfleet.hub.webhooks.dispatcher import WebhookDispatcher
from testfleet.store import coverage as coverage_store
from testfleet.store.db import Store
from testfleet.store.ingest import TaskIndex

_log = logging.getLogger(__name__)


class Hub:
    """One hub process's services. The store is the truth; these hold only connections,
    caches and wake-ups."""

    def __init__(self, config: HubConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.server_id = server_id = config.effective_server_id
        self.signals = signals = Signals()
        self.metrics = metrics = HubMetrics()
        plans = JobPlans()
        task_index = TaskIndex()
        self.runners = runners = RunnerRegistry()
        self.connections = connections = Connections(
            metrics, config.heartbeat_interval, config.agent_timeout
        )
        self.relay = relay = Relay(store, metrics, server_id)
        self.delivery = delivery = Delivery(store, connections, relay, plans)
        self.news = news = JobNews(signals, relay, runners)
        self.allocator = allocator = DeviceAllocator(
            store, signals, config.device_lease_ttl, is_local=connections.__contains__
        )
        self.jobs = JobService(server_id, store, signals, metrics, plans, news)
        self.developer_mode = developer_mode = DeveloperMode(
            server_id=server_id,
            store=store,
            link=DevLink(store, connections, relay),
            stop_job=self.jobs.stop,
            timeout=config.developer_timeout,
        )
        delivery.pause_flags = developer_mode.flags_for
        runner_deps = RunnerDeps(
            store=store,
            signals=signals,
            metrics=metrics,
            allocator=allocator,
            delivery=delivery,
            plans=plans,
            task_index=task_index,
            server_id=server_id,
            stop_grace=config.stop_grace,
        )
        self.scheduler = Scheduler(config, store, signals, runners, partial(JobRunner, runner_deps))
        self.revocations = revocations = Revocations(store)
        self.probes = probes = ProbeConnections(metrics)
        self.coverage = CoverageService(store=store, connections=probes, live=LiveBoard())
        self.probe_server = ProbeServer(
            server_id=server_id,
            store=store,
            connections=probes,
            service=self.coverage,
            metrics=metrics,
        )
        if relay.enabled:
            self.coverage.forwarding = Forwarding(
                server_id=server_id,
                store=store,
                relay=relay,
                connections=probes,
                run_here=partial(self.coverage.dispatch, here=True),
            )
        coverage_steps = CoverageSteps(store, plans, task_index, self.coverage)
        self.sessions = AgentSessions(
            server_id=server_id,
            store=store,
            connections=connections,
            delivery=delivery,
            news=news,
            signals=signals,
            metrics=metrics,
            intake=Intake(
                store, news, signals, metrics, task_index, before_ack=coverage_steps.handle
            ),
            revocations=revocations,
            on_registered=developer_mode.agent_registered,
            on_dropped=developer_mode.agent_dropped,
        )
        self.liveness = LivenessWatch(
            server_id=server_id,
            heartbeat_interval=config.heartbeat_interval,
            agent_timeout=config.agent_timeout,
            hub_timeout=config.hub_timeout,
            store=store,
            connections=connections,
            news=news,
            signals=signals,
            metrics=metrics,
        )
        self.presence = HubPresence(store, server_id, config.hub_timeout / 10)
        self.loop_watch = LoopWatch(metrics)
        storage = DirectoryStorage(config.artifact_root)
        self.reports = ReportReader(store, storage)
        self.artifacts = ArtifactService(
            server_id,
            store,
            storage,
            ArtifactLimits(config.max_artifact_size, config.max_job_artifacts),
            on_complete=self.reports.read,
        )
        self.webhooks = WebhookDispatcher(server_id, store, config.webhook_retry_for)
        self.schedules = Schedules(store, signals)
        self.maintenance = Maintenance(config, store, storage)
        self.lab_watch = LabWatch(store, signals)
        self.job_feeds = JobFeeds(store, signals)
        self.gateway = GatewayService(
            config, store, allocator, server_id, lambda: self.ready, relay, metrics.registry
        )
        self.sync = SyncService(server_id, engine_for(store))
        self.plan_catalog = PlanCatalog(store, config.plan_limits)
        self.plan_runs = PlanRuns(
            server_id=server_id,
            store=store,
            catalog=self.plan_catalog,
            jobs=self.jobs,
            signals=signals,
            sync=self.sync,
            local_agent=config.local_agent,
        )
        self._background: list[asyncio.Task[None]] = []
        self.ready = False

    async def start(self) -> None:
        """Start the background services."""
        await self.store.write(coverage_store.forget_hub_probes, self.server_id)
        services: dict[str, Coroutine[Any, Any, None]] = {
            "jobs": self.scheduler.claim_forever(),
            "leases": self.scheduler.keep_leases(),
            "allocator": self.allocator.run(),
            "agents": self.liveness.watch(),
            "presence": self.presence.run(),
            "relay": self.relay.run(),
            "revocations": self.revocations.run(),
            "loop-watch": self.loop_watch.run(),
            "webhooks": self.webhooks.run(),
            "schedules": self.schedules.run(),
            "maintenance": self.maintenance.run(),
            "lab-watch": self.lab_watch.run(),
            **self.gateway.loops(),
            "sync": self.sync.run(),
            "plan-runs": self.plan_runs.run(),
            "developer-mode": self.developer_mode.run(),
        }
        if self.coverage.forwarding is not None:
            services["coverage-actions"] = self.coverage.forwarding.watch()
        for name, coroutine in services.items():
            self._background.append(asyncio.create_task(coroutine, name=f"hub-{name}"))
        self.ready = True
        url = make_url(self.store.url).render_as_string(hide_password=True)
        _log.info("hub %s started on %s", self.server_id, url)

    async def stop(self) -> None:
        """Stop everything; running jobs stay running in the store for the next hub."""
        self.ready = False
        self.job_feeds.close()
        await self.scheduler.shutdown()
        await self.plan_runs.stop()
        await self.connections.close_all()
        await self.probes.close_all()
        for task in self._background:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        await self.gateway.close()
        await self.sync.close()
