"""Browser tests: Debian's Chromium driven by Playwright against real hub and agent processes.

Screenshots go to $TESTFLEET_SCREENSHOTS (`make screenshots` sets docs/screenshots, the
README's), else to build/screenshots.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.conftest import LiveHub
from tests.support.processes import Agent, Hub

CHROMIUM = os.environ.get("TESTFLEET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("TESTFLEET_SCREENSHOTS") or ROOT / "build" / "screenshots")
TIMEOUT_MS = 15_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here needs Chromium; without it they are skipped, saying so (CI installs it)."""
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        for item in items:
            if "tests/browser" in str(item.fspath):
                item.add_marker(pytest.mark.skip(reason=f"no Chromium at {CHROMIUM}"))


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver, per module: its sync API holds an event loop in this thread while
    it runs, which the asyncio tests of other folders must not find running."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


def new_page(browser: Browser, base_url: str, **options: object) -> tuple[BrowserContext, Page]:
    """A fresh context (no cookies, no cache) and a page in it; page errors fail the test."""
    context = browser.new_context(
        base_url=base_url, viewport={"width": 1280, "height": 860}, **options
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(_described(error)))
    page.errors = errors  # type: ignore[attr-defined]
    return context, page


def _described(error: Exception) -> str:
    """A page error's message, and its JavaScript stack when it has one (to find where)."""
    stack = getattr(error, "stack", None)
    message = str(error)
    return f"{message}\n{stack}" if stack and stack.strip() != message else message


@pytest.fixture
def page(browser: Browser, ui_hub: LiveHub) -> Iterator[Page]:
    """A page on the hub without auth; fails the test on an uncaught script error."""
    context, opened = new_page(browser, ui_hub.url)
    yield opened
    errors = opened.errors  # type: ignore[attr-defined]
    context.close()
    assert errors == [], errors


def screenshot(page: Page, name: str) -> Path:
    """Save the page as `<name>.png` in the screenshots folder."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header at the top, where it belongs
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="module")
def ui_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    """A hub without auth, and one agent `lab-1` with 2 slots and a label."""
    workdir = tmp_path_factory.mktemp("ui-hub")
    hub = Hub(workdir).start()
    agent = Agent(workdir, hub.url, "lab-1", slots=2, labels={"pool": "a"}).start()
    live = LiveHub(hub, agent)
    with live.client() as client:
        agent.wait_online(client)
    yield live
    agent.stop()
    hub.stop()
