"""The device farm with real parts: a hub process, agent processes offering Debian's Chromium
through chromedriver, and the unmodified `selenium` client driving them through the hub."""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import InvalidSessionIdException, WebDriverException
from selenium.webdriver.common.by import By

from tests.support.jobs import start, wait_state
from tests.support.processes import Agent, Hub, wait_until

pytestmark = pytest.mark.integration

PAGE = "data:text/html,<title>Farm page</title><h1 id=greeting>hello from the farm</h1>"


def free_devices(
    client: httpx.Client, count: int, timeout: float = 30.0
) -> list[dict[str, object]]:
    """Wait until `count` browser devices are free; returns them."""
    found: list[dict[str, object]] = []

    def enough() -> bool:
        nonlocal found
        found = client.get("/api/v1/devices", params={"kind": "browser", "state": "free"}).json()[
            "devices"
        ]
        return len(found) >= count

    wait_until(enough, timeout, 0.1, f"{count} free browsers")
    return found


def drive(hub_url: str) -> tuple[str, str, str]:
    """One client's session: open a page, find an element, read the title, quit."""
    driver = webdriver.Remote(
        command_executor=f"{hub_url}/wd/hub", options=webdriver.ChromeOptions()
    )
    try:
        driver.get(PAGE)
        text = driver.find_element(By.ID, "greeting").text
        return str(driver.capabilities["tf:device"]), driver.title, text
    finally:
        driver.quit()


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[tuple[Hub, list[Agent]]]:
    hub = Hub(tmp_path, extra=["--agent-timeout", "3"]).start()
    agents = [
        Agent(tmp_path, hub.url, f"node{i}", slots=0, providers=["chromium:count=2"]).start()
        for i in (1, 2)
    ]
    try:
        yield hub, agents
    finally:
        for agent in agents:
            agent.stop()
        hub.stop()


def test_selenium_drives_browsers_on_two_agents_in_parallel(
    farm: tuple[Hub, list[Agent]],
) -> None:
    hub, _ = farm
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        free_devices(client, 4)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(drive, [hub.url] * 4))
        free_devices(client, 4, timeout=10)
        sessions = client.get("/api/v1/sessions", params={"state": "all"}).json()["sessions"]
        shot = client.get(f"/api/v1/sessions/{sessions[0]['id']}/screenshot")
        commands = client.get(f"/api/v1/sessions/{sessions[0]['id']}/commands").json()
    devices = {device for device, _, _ in results}
    assert len(devices) == 4
    assert {d.split(":")[0] for d in devices} == {"node1", "node2"}
    assert {(title, text) for _, title, text in results} == {("Farm page", "hello from the farm")}
    assert [s["state"] for s in sessions] == ["ended"] * 4
    assert all(s["has_screenshot"] for s in sessions)
    assert shot.status_code == 200 and shot.content.startswith(b"\x89PNG")
    names = [c["command"] for c in commands["commands"]]
    assert names[:2] == ["POST /url", "POST /element"]
    assert names[-1] == "DELETE /"


def test_a_killed_agents_session_is_invalid_within_15_s_and_its_device_comes_back(
    farm: tuple[Hub, list[Agent]],
) -> None:
    hub, agents = farm
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        free_devices(client, 4)
        options = webdriver.ChromeOptions()
        options.set_capability("tf:agent", "node1")
        driver = webdriver.Remote(command_executor=f"{hub.url}/wd/hub", options=options)
        driver.get(PAGE)
        agents[0].kill()
        killed_at = time.monotonic()
        error: Exception | None = None
        while time.monotonic() - killed_at < 20:
            try:
                driver.title  # noqa: B018
            except InvalidSessionIdException as invalid:
                error = invalid
                break
            except WebDriverException:
                pass  # the node is unreachable, not yet known lost
            time.sleep(0.2)
        took = time.monotonic() - killed_at
        agents[0].start()
        free_devices(client, 4)
        session = client.get(f"/api/v1/sessions/{driver.session_id}").json()
    assert error is not None and took < 15, f"no invalid session id within {took:.1f} s"
    assert session["state"] == "ended"
    assert "lost" in session["end_reason"]


def test_a_session_goes_on_when_the_hub_restarts(farm: tuple[Hub, list[Agent]]) -> None:
    hub, _ = farm
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        free_devices(client, 4)
    driver = webdriver.Remote(
        command_executor=f"{hub.url}/wd/hub", options=webdriver.ChromeOptions()
    )
    try:
        driver.get(PAGE)
        hub.kill()
        hub.start()
        assert driver.title == "Farm page"
        assert driver.find_element(By.ID, "greeting").text == "hello from the farm"
    finally:
        driver.quit()


STEP = """
import json, os
from selenium import webdriver
from selenium.webdriver.common.options import ArgOptions
options = ArgOptions()  # the device's capabilities exactly as given
for key, value in json.loads(os.environ["TESTFLEET_DEVICE_CAPS"]).items():
    options.set_capability(key, value)
driver = webdriver.Remote(command_executor=os.environ["TESTFLEET_WEBDRIVER_URL"], options=options)
driver.get("data:text/html,<title>job page</title>")
print("title:", driver.title)
driver.quit()
"""


def test_a_job_drives_the_browser_it_was_given(farm: tuple[Hub, list[Agent]]) -> None:
    hub, _ = farm
    job = {
        "name": "browser-job",
        "tests": [
            {
                "name": "t",
                "devices": {"capabilities": {"browserName": "chrome"}, "kind": "browser"},
                "steps": [
                    {
                        "name": "drive",
                        "plugin": "cmd",
                        "params": {"executable": sys.executable, "args": ["-c", STEP]},
                    }
                ],
            }
        ],
    }
    with httpx.Client(base_url=hub.url, timeout=30) as client:
        free_devices(client, 4)
        job_id = start(client, job)
        status = wait_state(client, job_id, timeout=60)
        log = client.get(f"/api/v1/jobs/{job_id}/logs").text
        free_devices(client, 4, timeout=10)
    assert status["state"] == "completed", log
    assert "title: job page" in log


def test_phones_follow_adb_within_a_second(tmp_path: Path) -> None:
    listing = tmp_path / "listing.txt"
    listing.write_text("List of devices attached\n")
    adb = tmp_path / "bin" / "adb"
    adb.parent.mkdir()
    adb.write_text(f'#!/bin/sh\ncat "{listing}"\n')
    adb.chmod(adb.stat().st_mode | stat.S_IEXEC)
    hub = Hub(tmp_path).start()
    agent = Agent(
        tmp_path,
        hub.url,
        "phones",
        slots=0,
        providers=["android:interval=0.2"],
        env={"PATH": f"{adb.parent}{os.pathsep}{os.environ['PATH']}"},
    ).start()
    try:
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            wait_until(
                lambda: any(
                    a["name"] == "phones" for a in client.get("/api/v1/agents").json()["agents"]
                ),
                30,
                what="the agent",
            )

            def phones() -> set[str]:
                devices = client.get("/api/v1/devices", params={"kind": "phone"}).json()
                return {d["name"] for d in devices["devices"]}

            listing.write_text("List of devices attached\nPIXEL7 device model:Pixel_7\n")
            plugged = time.monotonic()
            wait_until(lambda: phones() == {"PIXEL7"}, 5, 0.05, "the phone to appear")
            appeared = time.monotonic() - plugged
            listing.write_text("List of devices attached\n")
            unplugged = time.monotonic()
            wait_until(lambda: phones() == set(), 5, 0.05, "the phone to go")
            gone = time.monotonic() - unplugged
    finally:
        agent.stop()
        hub.stop()
    assert appeared < 1.0 and gone < 1.0, (appeared, gone)
