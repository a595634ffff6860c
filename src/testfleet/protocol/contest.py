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


def _object(value: Any, where: str, what: str) -> dict[str, Any]:
    """`value` if it is an object (None counts as empty), else a located error."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ContestMappingError(where, f"{what} must be an object")
    return value


def _list(value: Any, where: str, what: str) -> list[Any]:
    """`value` if it is a list (None counts as empty), else a located error."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ContestMappingError(where, f"{what} must be a list")
    return value


def _map_test(index: int, test: Any) -> dict[str, Any]:
    where = f"/TestDescriptors/{index}"
    test = _object(test, where, "a test descriptor")
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
    acquire_at = f"{where}/TargetManagerAcquireParameters"
    acquire = _object(
        test.get("TargetManagerAcquireParameters"), acquire_at, "TargetManagerAcquireParameters"
    )
    targets = _list(acquire.get("Targets"), f"{acquire_at}/Targets", "Targets")
    names = [_target_name(f"{acquire_at}/Targets/{i}", t) for i, t in enumerate(targets)]
    fetch_at = f"{where}/TestFetcherFetchParameters"
    fetch = _object(test.get("TestFetcherFetchParameters"), fetch_at, "TestFetcherFetchParameters")
    steps = fetch.get("Steps")
    if not isinstance(steps, list):
        raise ContestMappingError(f"{fetch_at}/Steps", "Steps must be a list")
    devices: dict[str, Any] = {"count": max(1, len(names))}
    if names:
        devices["names"] = names
    return {
        "name": fetch.get("TestName") or f"test-{index}",
        "devices": devices,
        "steps": [_map_step(f"{fetch_at}/Steps/{i}", s, i) for i, s in enumerate(steps)],
    }


def _target_name(where: str, target: Any) -> str:
    target = _object(target, where, "a target")
    name = target.get("FQDN") or target.get("ID")
    if not isinstance(name, str) or not name:
        raise ContestMappingError(where, "a target needs an 'ID' or an 'FQDN'")
    return name


def _map_step(where: str, step: Any, index: int) -> dict[str, Any]:
    if not isinstance(step, dict) or "name" not in step:
        raise ContestMappingError(where, "a step needs at least 'name' (the plugin)")
    plugin = str(step["name"]).lower()
    params: dict[str, Any] = {}
    raw = _object(step.get("parameters"), f"{where}/parameters", "parameters")
    for key, value in raw.items():
        name = str(key).lower()
        if name in _SCALAR_PARAMS and isinstance(value, list) and len(value) == 1:
            value = value[0]
        params[name] = value
    return {"name": step.get("label") or f"{plugin}-{index}", "plugin": plugin, "params": params}


def _map_reporting(reporting: Any) -> dict[str, Any]:
    reporting = _object(reporting, "/Reporting", "Reporting")

    def reporters(key: str) -> list[dict[str, Any]]:
        result = []
        for i, spec in enumerate(_list(reporting.get(key), f"/Reporting/{key}", key)):
            where = f"/Reporting/{key}/{i}"
            spec = _object(spec, where, "a reporter")
            name = str(spec.get("Name", "")).lower()
            params = dict(_object(spec.get("Parameters"), f"{where}/Parameters", "Parameters"))
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
