"""The `plan` step plugin: runs this agent's share of a test plan run.

It fetches the plan (cached by content hash), makes its Python environment (cached by the
requirements' hash), starts every instance of the share at once, reports each one's state to
the hub as it changes, and sends the outputs when they have all ended. The step passes when
every instance of the share succeeded.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import tarfile
from collections import Counter
from pathlib import Path
from typing import ClassVar

from testfleet.steps.base import StepContext, StepPlugin, StepResult
from testfleet.steps.plan.archive import ArchiveError
from testfleet.steps.plan.environment import Log, PlanCache, PlanEnvironmentError
from testfleet.steps.plan.hubcalls import HubCallError, HubCalls, Reporter
from testfleet.steps.plan.instances import Ended, Launch, run_instance, write_outcome
from testfleet.steps.plan.params import InstanceSpec, PlanStepParams

MAX_OUTPUTS = 64 * 1024 * 1024


def sync_url(hub_url: str, run_id: str) -> str:
    """The sync service's WebSocket URL for a run."""
    base = hub_url.rstrip("/")
    for plain, secure in (("http://", "ws://"), ("https://", "wss://")):
        if base.startswith(plain):
            base = secure + base[len(plain) :]
    return f"{base}/api/v1/sync/{run_id}"


def pack_outputs(work: Path, specs: list[InstanceSpec]) -> bytes:
    """A tar.gz of the share's outputs, laid out `<group>/<seq>/...`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for spec in specs:
            outputs = work / str(spec.seq) / "outputs"
            if outputs.is_dir():
                archive.add(outputs, arcname=f"{spec.group}/{spec.seq}", filter=_regular_only)
    return buffer.getvalue()


def _regular_only(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return info if info.isfile() or info.isdir() else None


class PlanStep(StepPlugin):
    """Run an agent's share of a test plan run (the hub sends this step; users do not)."""

    name: ClassVar[str] = "plan"
    Params = PlanStepParams

    async def run(self, ctx: StepContext, params: PlanStepParams) -> StepResult:
        share = params.shares.get(ctx.agent_name, [])
        if not share:
            await ctx.log("info", f"no instances of run {params.run_id} for {ctx.agent_name}\n")
            return StepResult(passed=True, exit_code=0)
        if ctx.hub_url is None or ctx.cache_dir is None:
            return StepResult(passed=False, error="the plan step needs the agent's hub and cache")
        hub = HubCalls(ctx.hub_url, ctx.token)
        reporter = Reporter(hub, params.run_id, ctx.agent_name)
        try:
            return await self._run(ctx, params, share, hub, reporter)
        finally:
            await asyncio.shield(reporter.close())
            await hub.close()

    async def _run(
        self,
        ctx: StepContext,
        params: PlanStepParams,
        share: list[InstanceSpec],
        hub: HubCalls,
        reporter: Reporter,
    ) -> StepResult:
        assert ctx.hub_url is not None and ctx.cache_dir is not None
        cache = PlanCache(ctx.cache_dir / "plans")

        async def log(text: str) -> None:
            await ctx.log("info", text)

        try:
            source = await cache.source(params.source_hash, hub.download)
            extra = []
            if params.sdk_hash:
                extra.append(str(await cache.source(params.sdk_hash, hub.download)))
            requirements = source / params.requirements
            wanted = requirements.read_text() if requirements.is_file() else ""
            python = await cache.python(wanted, log)
        except (PlanEnvironmentError, HubCallError, ArchiveError, OSError) as error:
            message = f"the plan's environment could not be made: {error}"
            for spec in share:
                reporter.add(spec.seq, "failure", None, message)
            return StepResult(passed=False, error=message)
        work = ctx.cache_dir / "plans" / "runs" / params.run_id / ctx.agent_name
        shutil.rmtree(work, ignore_errors=True)
        launch = Launch(
            python=python,
            entry=source / params.entry,
            work=work,
            sync_url=sync_url(ctx.hub_url, params.run_id),
            token=ctx.token,
            manifest=source / "manifest.toml",
            extra_path=extra,
        )
        groups = {g.id: g for g in params.groups}
        await log(f"starting {len(share)} instance(s) of {params.plan}/{params.case}\n")

        def started(spec: InstanceSpec) -> None:
            reporter.add(spec.seq, "running")

        async def one(spec: InstanceSpec) -> Ended:
            ended = await run_instance(params, spec, groups[spec.group], launch, started)
            write_outcome(work, ended)
            reporter.add(spec.seq, ended.state, ended.exit_code, ended.error)
            if ended.state != "success":
                await log(f"instance {spec.seq} ({spec.group}): {ended.state}: {ended.error}\n")
            return ended

        started_tasks: list[asyncio.Task[Ended]] = []
        try:
            for spec in share:
                started_tasks.append(asyncio.create_task(one(spec)))
                # One start per turn of the loop: starting a hundred processes takes a while,
                # and the agent's heartbeats (and a hub in the same process) go on meanwhile.
                await asyncio.sleep(0)
            results = await asyncio.gather(*started_tasks)
        except asyncio.CancelledError:
            for task in started_tasks:
                task.cancel()
            await asyncio.gather(*started_tasks, return_exceptions=True)  # instances stopped
            for spec in share:
                reporter.add(spec.seq, "canceled", None, "the run was stopped")
            raise
        await self._send_outputs(hub, params.run_id, ctx.agent_name, work, share, log)
        counts = Counter(r.state for r in results)
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        await log(f"instances ended: {summary}\n")
        if reporter.failures:
            return StepResult(
                passed=False, error=f"reports did not reach the hub: {reporter.failures[-1]}"
            )
        ok = counts.get("success", 0) == len(share)
        return StepResult(passed=ok, exit_code=0 if ok else 1, error=None if ok else summary)

    async def _send_outputs(
        self,
        hub: HubCalls,
        run_id: str,
        agent: str,
        work: Path,
        share: list[InstanceSpec],
        log: Log,
    ) -> None:
        data = await asyncio.to_thread(pack_outputs, work, share)
        if len(data) > MAX_OUTPUTS:
            await log(
                f"the outputs are {len(data)} bytes packed, over the limit of {MAX_OUTPUTS}: "
                f"they stay on this agent in {work}\n"
            )
            return
        try:
            await hub.upload_outputs(run_id, agent, data)
        except HubCallError as error:
            await log(f"the outputs did not reach the hub (they stay in {work}): {error}\n")
            return
        await asyncio.to_thread(shutil.rmtree, work, True)  # the hub has them now
