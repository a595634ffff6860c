"""Map ConTest's own descriptor field names (JobName, TestDescriptors, ...) to ours."""

from __future__ import annotations

from typing import Any

CONTEST_KEYS = frozenset({"JobName", "TestDescriptors", "Runs", "RunInterval", "Reporting", "Tags"})

# ConTest step parameters are lists of strings; these of ours take one value.
_SCALAR_PARAMS = frozenset({"executable", "text", "duration", "cwd", "timeout"})


class ContestMappingError(ValueError):
    """A ConTest descriptor we cannot map; `location` is a JSON pointer into the input."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(message)
        self.location = location
        self.message = message


def is_contest_descriptor(data: object) -> bool:
    """True when the document uses ConTest's field names."""
    return isinstance(data, dict) and "JobName" in data


def from_contest(data: dict[str, Any]) -> dict[str, Any]:
    """Return our descriptor (as a plain dict, still to be validated) for a ConTest one."""
    unknown = sorted(set(data) - CONTEST_KEYS)
    if unknown:
        raise ContestMappingError(
            f"/{unknown[0]}", f"unknown ConTest field {unknown[0]!r}; known: {sorted(CONTEST_KEYS)}"
        )
    tests = data.get("TestDescriptors")
    if not isinstance(tests, list):
        raise ContestMappingError("/TestDescriptors", "TestDescriptors must be a list")
    result: dict[str, Any] = {
        "name": data["JobName"],
        "tags": data.get("Tags") or [],
        "runs": data.get("Runs", 1),
        "run_interval": data.get("RunInterval", 0),
        "tests": [_map_test(index, test) for index, test in enumerate(tests)],
    }
    reporting = data.get("Reporting")
    if reporting is not None:
        result["reporting"] = _map_reporting(reporting)
    return result


def _map_test(index: int, test: Any) -> dict[str, Any]:
    where = f"/TestDescriptors/{index}"
    if not isinstance(test, dict):
        raise ContestMappingError(where, "a test descriptor must be an object")
    manager = test.get("TargetManagerName", "TargetList")
    if str(manager).lower() != "targetlist":
        raise ContestMappingError(
            f"{where}/TargetManagerName",
            f"target manager {manager!r} is not supported; use 'TargetList'",
        )
    fetcher = test.get("TestFetcherName", "literal")
    if str(fetcher).lower() != "literal":
        raise ContestMappingError(
            f"{where}/TestFetcherName", f"test fetcher {fetcher!r} is not supported; use 'literal'"
        )
    acquire = test.get("TargetManagerAcquireParameters") or {}
    targets = acquire.get("Targets") or []
    if not isinstance(targets, list):
        raise ContestMappingError(
            f"{where}/TargetManagerAcquireParameters/Targets", "Targets must be a list"
        )
    names = [str(t.get("FQDN") or t.get("ID")) for t in targets if isinstance(t, dict)]
    fetch = test.get("TestFetcherFetchParameters") or {}
    steps = fetch.get("Steps")
    if not isinstance(steps, list):
        raise ContestMappingError(
            f"{where}/TestFetcherFetchParameters/Steps", "Steps must be a list"
        )
    devices: dict[str, Any] = {"count": max(1, len(names))}
    if names:
        devices["names"] = names
    return {
        "name": fetch.get("TestName") or f"test-{index}",
        "devices": devices,
        "steps": [
            _map_step(f"{where}/TestFetcherFetchParameters/Steps/{i}", s, i)
            for i, s in enumerate(steps)
        ],
    }


def _map_step(where: str, step: Any, index: int) -> dict[str, Any]:
    if not isinstance(step, dict) or "name" not in step:
        raise ContestMappingError(where, "a step needs at least 'name' (the plugin)")
    plugin = str(step["name"]).lower()
    params: dict[str, Any] = {}
    for key, value in (step.get("parameters") or {}).items():
        name = key.lower()
        if name in _SCALAR_PARAMS and isinstance(value, list) and len(value) == 1:
            value = value[0]
        params[name] = value
    mapped: dict[str, Any] = {
        "name": step.get("label") or f"{plugin}-{index}",
        "plugin": plugin,
        "params": params,
    }
    return mapped


def _map_reporting(reporting: Any) -> dict[str, Any]:
    if not isinstance(reporting, dict):
        raise ContestMappingError("/Reporting", "Reporting must be an object")

    def reporters(key: str) -> list[dict[str, Any]]:
        result = []
        for spec in reporting.get(key) or []:
            name = str(spec.get("Name", "")).lower()
            params = dict(spec.get("Parameters") or {})
            if name == "targetsuccess":
                name = "target_success"
                if "SuccessExpression" in params:
                    params = {"threshold": params.pop("SuccessExpression"), **params}
            result.append({"name": name, "params": params})
        return result

    return {
        "run_reporters": reporters("RunReporters"),
        "final_reporters": reporters("FinalReporters"),
    }
