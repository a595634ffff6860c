"""The coverage commands and the pytest plugin, as a user runs them, against a real hub and
the real probe."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.test_coverage_probe import SHOP, start_app, wait_probe
from tests.support.processes import Hub, cli_command

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    running = Hub(tmp_path_factory.mktemp("coverage-cli")).start()
    yield running
    running.stop()


def cli(hub: Hub, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cli_command(), "--hub", hub.url, "coverage", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_start_stop_report_and_listings_from_the_command_line(hub: Hub, tmp_path: Path) -> None:
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        app = start_app(hub.url, "cli-1", tmp_path)
        agent = wait_probe(client, "cli-1")
        started = cli(hub, "start", "--app", "shop", "--build", "cli-1", "--test-name", "manual")
        session_id = started.stdout.strip()
        app.do("run 30 2")
        app.do("flush")
        agents = cli(hub, "agents", "--json")
        table = cli(hub, "sessions", "--app", "shop")
        stopped = cli(hub, "stop", session_id, "--agent", agent)
        report = cli(hub, "report", session_id, "--functions")
        lcov = cli(hub, "report", session_id, "--format", "lcov", "-o", str(tmp_path / "c.info"))
        xml = cli(hub, "report", "--app", "shop", "--build", "cli-1", "--format", "cobertura")
        unknown = cli(hub, "stop", "nope", "--app", "shop")
        neither = cli(hub, "stop", session_id)
        app.exit()

    assert started.returncode == 0, started.stderr
    assert agent in [a["agent_id"] for a in json.loads(agents.stdout)["agents"]]
    assert session_id in table.stdout and "active" in table.stdout
    assert stopped.returncode == 0 and "finished" in stopped.stdout, stopped.stderr
    assert "shop/cart.py" in report.stdout and "Cart.total" in report.stdout
    assert lcov.returncode == 0 and "SF:shop/pricing.py" in (tmp_path / "c.info").read_text()
    assert xml.stdout.startswith("<?xml") and 'filename="shop/orders.py"' in xml.stdout
    assert unknown.returncode == 1 and "session not found" in unknown.stderr
    assert neither.returncode == 2 and "--agent ID or --app NAME" in neither.stderr


def test_risks_and_tests_to_run_from_the_command_line(hub: Hub, tmp_path: Path) -> None:
    changed = tmp_path / "shop2"
    subprocess.run(["cp", "-r", str(SHOP), str(changed)], check=True)
    pricing = changed / "shop" / "pricing.py"
    text = pricing.read_text()
    pricing.write_text(text.replace("return REDUCED\n", "return REDUCED + 0\n"))
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        for build, folder in (("1", SHOP), ("2", changed)):
            probe = [*cli_command(), "probe", "--hub", hub.url, "--app", "tia", "--build", build]
            program = [sys.executable, "-m", "shop.main", "--orders", "5"]
            subprocess.run(
                [*probe, "--source", "shop", "--", *program],
                cwd=folder,
                check=True,
                capture_output=True,
                timeout=120,
            )
        builds = client.get("/api/v1/coverage/builds?app=tia").json()["builds"]
    risks = cli(hub, "risks", "--app", "tia", "--build", "2", "--json")
    table = cli(hub, "risks", "--app", "tia", "--build", "2")
    to_run = cli(hub, "tests-to-run", "--app", "tia", "--build", "2", "--json")

    assert [b["build"] for b in builds] == ["2", "1"]
    found = json.loads(risks.stdout)
    assert found["parent"] == "1"
    assert [(r["path"], r["function"], r["kind"]) for r in found["risks"]] == [
        ("shop/pricing.py", "tax_rate", "modified")
    ]
    assert "tax_rate" in table.stdout and "0/1 risks tested" in table.stdout
    assert json.loads(to_run.stdout)["tests"] == []  # no session ran on build 1


def test_the_pytest_plugin_records_a_session_split_by_test(hub: Hub, tmp_path: Path) -> None:
    tests = tmp_path / "test_shop.py"
    tests.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(SHOP)!r})

            def test_food():
                from shop.cart import Cart
                cart = Cart()
                cart.add("apple")
                assert cart.total() == 43

            def test_home():
                from shop.cart import Cart
                cart = Cart()
                cart.add("lamp")
                assert cart.total() == 4164
            """
        )
    )
    run = subprocess.run(
        [
            *cli_command(),
            "probe",
            "--hub",
            hub.url,
            "--app",
            "plugin",
            "--build",
            "1",
            "--source",
            str(SHOP / "shop"),
            "--base",
            str(SHOP),
            "--",
            sys.executable,
            "-m",
            "pytest",
            str(tests),
            "-p",
            "no:cacheprovider",
            "-q",
            "--testfleet-session",
            "--testfleet-app",
            "plugin",
            "--testfleet-hub",
            hub.url,
            "--testfleet-session-id",
            "plugin-run",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        report = client.get("/api/v1/coverage/sessions/plugin-run/report").json()

    assert run.returncode == 0, run.stdout + run.stderr
    assert "testfleet coverage session plugin-run:" in run.stdout
    food = report["tests"]["test_shop.py::test_food"]["files"]["shop/pricing.py"]
    home = report["tests"]["test_shop.py::test_home"]["files"]["shop/pricing.py"]
    assert 13 in food and 13 not in home
    assert 14 in home and 14 not in food


def test_watch_follows_a_realtime_session_until_it_ends(hub: Hub, tmp_path: Path) -> None:
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        app = start_app(hub.url, "watch-1", tmp_path)
        wait_probe(client, "watch-1")
        started = cli(hub, "start", "--app", "shop", "--build", "watch-1", "--realtime")
        session_id = started.stdout.strip()
        watcher = subprocess.Popen(
            [*cli_command(), "--hub", hub.url, "coverage", "watch", session_id],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert watcher.stdout is not None
            first = watcher.stdout.readline()
            app.do("run 20 1")
            app.do("flush")
            stopped = cli(hub, "stop", session_id, "--app", "shop")
            rest, errors = watcher.communicate(timeout=60)
        finally:
            if watcher.poll() is None:
                watcher.kill()
                watcher.communicate(timeout=10)
        app.exit()

    assert stopped.returncode == 0, stopped.stderr
    assert watcher.returncode == 0, errors
    lines = [first.strip(), *rest.splitlines()]
    assert session_id in lines[0] and "active" in lines[0] and " 0/" in lines[0]
    assert "finished" in lines[-1] and " 0/" not in lines[-1]
