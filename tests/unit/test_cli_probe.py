"""`testfleet probe`: its environment form, and the errors of a bad command line."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from typer.testing import CliRunner

from testfleet.cli.main import app
from testfleet.probe.config import ProbeConfig
from testfleet.probe.environ import BOOTSTRAP_DIR

runner = CliRunner()


def test_print_env_gives_the_variables_that_start_the_same_probe(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "--hub",
            "http://127.0.0.1:9999",
            "probe",
            "--app",
            "shop",
            "--build",
            "2.1",
            "--parent-build",
            "2.0",
            "--source",
            str(tmp_path),
            "--branch",
            "--print-env",
        ],
        env={"TESTFLEET_TOKEN": "secret", "PYTHONPATH": ""},
    )
    assert result.exit_code == 0, result.output
    env = {}
    for line in result.output.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = shlex.split(value)[0]
    config = ProbeConfig.from_env(env)

    assert config is not None
    assert (config.hub_url, config.app, config.build, config.parent_build) == (
        "http://127.0.0.1:9999",
        "shop",
        "2.1",
        "2.0",
    )
    assert config.sources == (tmp_path.resolve(),) and config.branch
    assert config.token == "secret"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(BOOTSTRAP_DIR)


def test_bad_command_lines_say_what_is_wrong() -> None:
    no_command = runner.invoke(app, ["probe", "--app", "a", "--build", "1"])
    missing = runner.invoke(app, ["probe", "--app", "a", "--build", "1", "--", "no-such-program-x"])
    bad_hub = runner.invoke(
        app, ["probe", "--hub", "ftp://x", "--app", "a", "--build", "1", "--print-env"]
    )
    bad_name = runner.invoke(app, ["probe", "--app", "a b", "--build", "1", "--print-env"])

    assert no_command.exit_code == 2 and "give the command to run after --" in no_command.output
    assert missing.exit_code == 127 and "command not found: no-such-program-x" in missing.output
    assert bad_hub.exit_code == 2 and "http://host:port" in bad_hub.output
    assert bad_name.exit_code == 2
