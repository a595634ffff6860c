"""Builder `exec:python`: the hub checks a plan's source (the entry point exists, every module
compiles, requirements come from PyPI) and names the build by content; each agent then makes
the virtual environment for the requirements, cached by their hash (`steps/plan/environment.py`).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from typing import Any

from testfleet.hub.errors import ApiError
from testfleet.protocol.api import ErrorDetail
from testfleet.protocol.manifest import Manifest
from testfleet.steps.plan.archive import read_text

BUILDER = "exec:python"
MAX_MODULE_BYTES = 5_000_000
_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,\s-]+\])?\s*([<>=!~;].*)?$")


def artifact_key(source_hash: str, sdk_hash: str | None, build_config: dict[str, Any]) -> str:
    """The build's name: a hash of everything it is made of."""
    made_of = {"builder": BUILDER, "source": source_hash, "sdk": sdk_hash, "config": build_config}
    return hashlib.sha256(json.dumps(made_of, sort_keys=True).encode()).hexdigest()


def settings(manifest: Manifest, build_config: dict[str, Any]) -> dict[str, str]:
    """The entry point and requirements file: the manifest's, overridden by the composition."""
    base = manifest.python_build()
    return {
        "entry": str(build_config.get("entry") or base.entry),
        "requirements": str(build_config.get("requirements") or base.requirements),
    }


def check_source(data: bytes, config: dict[str, str]) -> list[str]:
    """Check a plan's archive for `exec:python`; returns the requirements (422 on a problem)."""
    problems: list[ErrorDetail] = []
    entry = config["entry"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = {i.filename.removeprefix("./"): i for i in archive.infolist() if not i.is_dir()}
        if entry not in names:
            problems.append(
                ErrorDetail(location=entry, message="the entry point is not in the plan")
            )
        for name, info in sorted(names.items()):
            if not name.endswith(".py"):
                continue
            if info.file_size > MAX_MODULE_BYTES:
                problems.append(ErrorDetail(location=name, message="module too large to build"))
                continue
            try:
                compile(archive.read(info), name, "exec", dont_inherit=True)
            except SyntaxError as error:
                where = f"{name}:{error.lineno}" if error.lineno else name
                problems.append(ErrorDetail(location=where, message=f"syntax error: {error.msg}"))
            except ValueError as error:
                problems.append(ErrorDetail(location=name, message=str(error)))
    requirements = read_text(data, config["requirements"]) or ""
    wanted = []
    for number, line in enumerate(requirements.splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not _REQUIREMENT.match(text) or "://" in text or text.startswith(("-", ".", "/")):
            problems.append(
                ErrorDetail(
                    location=f"{config['requirements']}:{number}",
                    message=f"{text!r}: only package requirements from PyPI are allowed "
                    "(no options, URLs or paths)",
                )
            )
            continue
        wanted.append(text)
    if problems:
        first = problems[0]
        raise ApiError(422, "build_failed", f"{first.location}: {first.message}", problems)
    return wanted
