"""A run's outputs as one tar.gz, laid out `<run_id>/<group>/<seq>/...`, from the shares the
agents sent; plus `<run_id>/result.json` with the outcomes known so far."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

MAX_SHARE = 64 * 1024 * 1024
"""The largest share (packed) an agent may send."""


def _safe(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and "\\" not in name


def merge(run_id: str, shares: Sequence[tuple[str, bytes]], result: dict[str, Any]) -> bytes:
    """One archive of every share; members that are not plain files or directories, or whose
    paths leave the archive, are left out."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as merged:
        for _part, data in shares:
            try:
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as share:
                    for member in share:
                        if not _safe(member.name) or not (member.isfile() or member.isdir()):
                            continue
                        content = share.extractfile(member) if member.isfile() else None
                        member.name = f"{run_id}/{member.name}"
                        merged.addfile(member, content)
            except (tarfile.TarError, OSError, EOFError):
                continue  # a damaged share: the others still come out
        summary = json.dumps(result, indent=2).encode() + b"\n"
        info = tarfile.TarInfo(f"{run_id}/result.json")
        info.size = len(summary)
        merged.addfile(info, io.BytesIO(summary))
    return buffer.getvalue()


def check_share(data: bytes) -> str | None:
    """What is wrong with an uploaded share, or None when it is a readable tar.gz."""
    if len(data) > MAX_SHARE:
        return f"a share of the outputs may be at most {MAX_SHARE} bytes"
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as share:
            for member in share:
                if not _safe(member.name):
                    return f"{member.name}: paths must stay inside the archive"
    except (tarfile.TarError, OSError, EOFError) as error:
        return f"not a tar.gz: {error}"
    return None
