"""The plans the hub knows: an archive is checked in memory, its manifest validated, and the
archive kept under its content hash (`plan import` and `/build` both come here)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import Connection

from testfleet.hub.errors import ApiError, json_pointer
from testfleet.protocol.api import ErrorDetail
from testfleet.protocol.manifest import Manifest
from testfleet.protocol.wire import utcnow
from testfleet.steps.plan.archive import ArchiveError, Limits, check_zip, content_hash, read_text
from testfleet.store import plan_catalog
from testfleet.store.db import Store
from testfleet.store.plan_records import PlanRecord

MANIFEST = "manifest.toml"


@dataclass(frozen=True)
class CheckedArchive:
    """An archive that passed the checks, with its content hash and (for a plan) manifest."""

    data: bytes
    hash: str
    manifest: Manifest | None


def archive_error(error: ArchiveError, part: str = "archive") -> ApiError:
    """The 422 of a refused archive, located at the offending member."""
    where = f"{part}:{error.member}" if error.member else part
    return ApiError(
        422,
        "invalid_archive",
        f"{where}: {error.message}",
        [ErrorDetail(location=where, message=error.message)],
    )


def check_archive(
    data: bytes, limits: Limits, *, plan: bool = True, part: str = "archive"
) -> CheckedArchive:
    """Check an uploaded archive in memory (nothing is written); 422 saying what and where."""
    try:
        check_zip(data, limits)
        digest = content_hash(data, limits)
        text = read_text(data, MANIFEST) if plan else None
    except ArchiveError as error:
        raise archive_error(error, part) from None
    if not plan:
        return CheckedArchive(data, digest, None)
    if text is None:
        raise ApiError(
            422,
            "invalid_plan",
            f"{part}: the plan has no {MANIFEST} at its top level",
            [ErrorDetail(location=f"{part}:{MANIFEST}", message="missing")],
        )
    return CheckedArchive(data, digest, parse_manifest(text, f"{part}:{MANIFEST}"))


def parse_manifest(text: str, where: str = MANIFEST) -> Manifest:
    """A manifest from TOML text; 422 with the location of every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ApiError(
            422,
            "invalid_manifest",
            f"{where}: {error}",
            [ErrorDetail(location=where, message=str(error))],
        ) from None
    try:
        return Manifest.model_validate(data)
    except ValidationError as error:
        details = [
            ErrorDetail(location=f"{where}:{json_pointer(e['loc'])}", message=e["msg"])
            for e in error.errors()
        ]
        raise ApiError(
            422, "invalid_manifest", f"{details[0].location}: {details[0].message}", details
        ) from None


class PlanCatalog:
    """Imports plans and hands out their manifests and archives."""

    def __init__(self, store: Store, limits: Limits) -> None:
        self._store = store
        self.limits = limits

    async def import_archive(self, data: bytes, requestor: str) -> PlanRecord:
        """Check and keep a plan archive; the plan named by its manifest now has this source."""
        checked = check_archive(data, self.limits)
        assert checked.manifest is not None
        await self.keep(checked, requestor)
        plan = await self.get(checked.manifest.name)
        assert plan is not None
        return plan

    async def keep(self, checked: CheckedArchive, requestor: str) -> None:
        """Store a checked archive (and, for a plan, the plan row naming it)."""
        now = utcnow()
        manifest = checked.manifest

        def work(conn: Connection) -> None:
            plan_catalog.put_source(conn, checked.hash, checked.data, now)
            if manifest is not None:
                plan_catalog.put_plan(
                    conn,
                    manifest.name,
                    manifest.model_dump(mode="json"),
                    checked.hash,
                    requestor,
                    now,
                )

        await self._store.write(work)

    async def get(self, name: str) -> PlanRecord | None:
        """The plan called `name`."""
        return await self._store.read(plan_catalog.get_plan, name)

    async def require(self, name: str, location: str) -> tuple[PlanRecord, Manifest]:
        """The plan and its manifest, or 422 at `location` naming what to do."""
        plan = await self.get(name)
        if plan is None:
            raise ApiError(
                422,
                "unknown_plan",
                f"{location}: plan {name!r} is not known to this hub; import it first "
                "(testfleet plan import DIR) or send it with /build",
                [ErrorDetail(location=location, message=f"unknown plan {name!r}")],
            )
        return plan, Manifest.model_validate(plan.manifest)

    async def list(self) -> list[PlanRecord]:
        """Every plan."""
        return await self._store.read(plan_catalog.list_plans)

    async def archive(self, content_hash: str) -> bytes | None:
        """The archive stored under `content_hash`."""
        return await self._store.read(plan_catalog.get_source, content_hash)
