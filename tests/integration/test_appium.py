"""A real Appium 3 server (with its Chromium driver) offered as a `static` device, driven
through the hub with the Appium Python client."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from appium import webdriver as appium_webdriver
from appium.options.common import AppiumOptions
from selenium.webdriver.common.by import By

from tests.support.processes import Agent, Hub, free_port, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
APPIUM = ROOT / ".node" / "node_modules" / ".bin" / "appium"
APPIUM_HOME = ROOT / ".node" / "appium-home"
HEADLESS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def appium_or_skip() -> Path:
    """The Appium the Makefile installs (`make appium`); CI must have it."""
    if APPIUM.exists() and (APPIUM_HOME / "package.json").exists():
        return APPIUM
    message = f"Appium is not installed at {APPIUM} (run `make appium`)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def test_appium_drives_chromium_through_the_hub(tmp_path: Path) -> None:
    appium = appium_or_skip()
    port = free_port()
    with (tmp_path / "appium.log").open("wb") as log:
        server = subprocess.Popen(
            [str(appium), "--address", "127.0.0.1", "--port", str(port), "--log-level", "error"],
            env={**os.environ, "APPIUM_HOME": str(APPIUM_HOME)},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    devices = tmp_path / "devices.json"
    devices.write_text(
        json.dumps(
            [
                {
                    "name": "appium-chromium",
                    "url": f"http://127.0.0.1:{port}",
                    "kind": "browser",
                    "capabilities": {"browserName": "chrome", "platformName": "linux"},
                    "session_capabilities": {
                        "appium:automationName": "Chromium",
                        "appium:executable": "/usr/bin/chromedriver",
                        "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": HEADLESS},
                    },
                }
            ]
        )
    )
    hub = Hub(tmp_path).start()
    agent = Agent(tmp_path, hub.url, "appium", slots=0, providers=[f"static:{devices}"]).start()
    try:

        def appium_up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/status", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(appium_up, 60, 0.2, "Appium to listen")
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            wait_until(
                lambda: client.get("/api/v1/devices", params={"state": "free"}).json()["devices"],
                30,
                0.1,
                "the static device",
            )
        options = AppiumOptions()
        options.set_capability("browserName", "chrome")
        options.set_capability("platformName", "linux")
        options.set_capability("appium:automationName", "Chromium")
        driver = appium_webdriver.Remote(f"{hub.url}/wd/hub", options=options)
        try:
            driver.get("data:text/html,<title>appium page</title><p id=p>through the hub</p>")
            title = driver.title
            text = driver.find_element(By.CSS_SELECTOR, "#p").text
            device = driver.capabilities.get("tf:device")
        finally:
            driver.quit()
    finally:
        agent.stop()
        hub.stop()
        server.terminate()
        server.wait(15)
    assert (title, text, device) == ("appium page", "through the hub", "appium:appium-chromium")
