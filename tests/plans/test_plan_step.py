"""The `plan` step: internal to the hub, its instances' environment, its outputs' layout."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from testfleet.hub.descriptors import check_descriptor
from testfleet.hub.errors import ApiError
from testfleet.steps.plan.instances import Launch, instance_env
from testfleet.steps.plan.params import GroupSpec, InstanceSpec, PlanStepParams
from testfleet.steps.plan.step import PlanStep, pack_outputs, sync_url
from testfleet.steps.registry import get_plugin


def test_users_cannot_submit_the_hubs_own_plan_step() -> None:
    with pytest.raises(ApiError) as refused:
        check_descriptor(
            {"name": "j", "tests": [{"name": "t", "steps": [{"name": "s", "plugin": "plan"}]}]}
        )
    assert refused.value.errors[0].location == "/tests/0/steps/0/plugin"
    assert get_plugin("plan", internal=True) is PlanStep


def params() -> PlanStepParams:
    return PlanStepParams(
        run_id="run-1",
        plan="p",
        case="c",
        source_hash="0" * 64,
        total=3,
        groups=[GroupSpec(id="g", count=3, params={"n": 2, "name": "a|b", "on": True})],
        shares={"agent-1": [InstanceSpec(seq=2, group="g", group_seq=2)]},
        timeout=60,
        start_time="2026-01-01T00:00:00+00:00",
    )


def test_an_instances_environment(tmp_path: Path) -> None:
    launch = Launch(
        python="python3",
        entry=tmp_path / "main.py",
        work=tmp_path / "work",
        sync_url=sync_url("https://hub.lab:8443/", "run-1"),
        token="secret",
        manifest=tmp_path / "manifest.toml",
        extra_path=["/sdk"],
    )
    spec = params().shares["agent-1"][0]
    env = instance_env(params(), spec, params().groups[0], launch)
    assert env["TESTFLEET_SYNC_URL"] == "wss://hub.lab:8443/api/v1/sync/run-1"
    assert (env["SYNC_SERVICE_HOST"], env["SYNC_SERVICE_PORT"]) == ("hub.lab", "8443")
    assert env["TEST_INSTANCE_PARAMS"] == "n=2|name=a|b|on=true"
    assert env["TESTFLEET_INSTANCE_PARAMS_JSON"] == '{"n": 2, "name": "a|b", "on": true}'
    assert (env["TEST_INSTANCE_COUNT"], env["TEST_GROUP_INSTANCE_COUNT"]) == ("3", "3")
    assert (env["TESTFLEET_GLOBAL_SEQ"], env["TESTFLEET_GROUP_SEQ"]) == ("2", "2")
    assert env["TEST_OUTPUTS_PATH"] == str(tmp_path / "work" / "2" / "outputs")
    assert env["TESTFLEET_TOKEN"] == "secret" and env["PYTHONPATH"].startswith("/sdk")


def test_outputs_are_laid_out_by_group_and_instance(tmp_path: Path) -> None:
    outputs = tmp_path / "2" / "outputs"
    outputs.mkdir(parents=True)
    (outputs / "run.out").write_text("{}\n")
    (outputs / "link").symlink_to(outputs / "run.out")
    data = pack_outputs(tmp_path, [InstanceSpec(seq=2, group="g", group_seq=2)])
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        assert sorted(archive.getnames()) == ["g/2", "g/2/run.out"]
