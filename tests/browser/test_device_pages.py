"""The device farm's pages in Chromium against a real hub (auth on) and an agent offering
Debian's Chromium and 60 static devices: a Selenium session appears on the sessions page
while it runs, its commands count up live, an operator kills it from the page and the
client's next command is refused; a viewer is offered no Kill and the API refuses one; the
devices are paged and filtered by the hub, the address keeping both."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from selenium import webdriver
from selenium.common.exceptions import InvalidSessionIdException, WebDriverException
from selenium.webdriver.remote.client_config import AuthType, ClientConfig

from tests.browser.conftest import new_page, screenshot
from tests.browser.test_sign_in import sign_in
from tests.conftest import LiveHub
from tests.support.processes import Agent, Hub, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PAGE = "data:text/html,<title>Farm page</title><h1 id=greeting>hello from the farm</h1>"
PHONES = 60


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    """A hub with auth, and agent `farm-1` offering one Chromium and 60 static phones."""
    workdir = tmp_path_factory.mktemp("farm-hub")
    phones = [
        {
            "name": f"phone-{n:02d}",
            "url": "http://127.0.0.1:9",
            "kind": "phone",
            "capabilities": {"platformName": "Android"},
            "labels": {"pool": "phones"},
        }
        for n in range(PHONES)
    ]
    static = workdir / "phones.json"
    static.write_text(json.dumps(phones))
    hub = Hub(workdir, auth=True)
    admin = hub.create_token("farm-admin", "admin")
    agent_token = hub.create_token("farm-agent", "agent")
    hub.start()
    agent = Agent(
        workdir,
        hub.url,
        "farm-1",
        slots=0,
        token=agent_token,
        providers=["chromium:count=1", f"static:{static}"],
    ).start()
    live = LiveHub(hub, agent, admin_token=admin)
    with live.client() as client:

        def all_free() -> bool:
            devices = client.get("/api/v1/devices", params={"state": "free"}).json()["devices"]
            return len(devices) == PHONES + 1

        wait_until(all_free, 60, 0.1, "the farm's devices free")
    yield live
    agent.stop()
    hub.stop()


NAMES = itertools.count(1)


def token(farm: LiveHub, role: str) -> str:
    """A new token of `role` (named alice-1, alice-2 ...)."""
    name = f"alice-{next(NAMES)}" if role == "operator" else f"victor-{next(NAMES)}"
    with farm.client() as admin:
        answer = admin.post("/api/v1/tokens", json={"name": name, "role": role})
    return str(answer.json()["token"])


@pytest.fixture
def browse(browser: Browser, farm: LiveHub) -> Iterator[Page]:
    context, page = new_page(browser, farm.url)
    yield page
    errors = page.errors  # type: ignore[attr-defined]
    context.close()
    assert errors == [], errors


def selenium(farm: LiveHub, secret: str) -> webdriver.Remote:
    """A Selenium client's session through the hub, with a bearer token."""
    url = f"{farm.url}/wd/hub"
    config = ClientConfig(url, auth_type=AuthType.BEARER, token=secret)
    return webdriver.Remote(url, options=webdriver.ChromeOptions(), client_config=config)


def test_a_session_is_shown_live_and_an_operator_kills_it(browse: Page, farm: LiveHub) -> None:
    page = browse
    secret = token(farm, "operator")
    sign_in(page, secret)
    page.goto("/ui/sessions")
    expect(page.get_by_role("heading", name="Sessions", level=1)).to_be_visible()
    expect(page.get_by_text("No live session")).to_be_visible()
    driver = selenium(farm, secret)
    try:
        row = page.locator("[data-session]")
        expect(row).to_have_count(1, timeout=20_000)  # no reload: the sessions topic
        expect(row.locator(".badge")).to_have_text("active")
        expect(row).to_contain_text("farm-1:chromium-0")
        expect(row).to_contain_text("chrome on linux")
        driver.get(PAGE)
        assert driver.title == "Farm page"
        driver.find_element("id", "greeting")
        expect(row.get_by_test_id("commands")).to_have_text(
            re.compile(r"^([3-9]|\d\d)$"), timeout=20_000
        )
        number = (row.get_attribute("data-session") or "").strip()

        page.goto("/ui/agents?kind=browser")
        device = page.locator('[data-device="farm-1:chromium-0"]')
        expect(device.locator(".badge")).to_have_text("busy")
        expect(device.get_by_role("link", name=f"session #{number}")).to_be_visible()
        device.get_by_role("link", name=f"session #{number}").click()

        expect(page).to_have_url(re.compile(rf"/ui/sessions/{number}$"))
        expect(page.get_by_role("heading", name=f"Session #{number}")).to_be_visible()
        commands = page.get_by_test_id("commands-table").locator("tbody tr")
        expect(commands.filter(has_text="POST /url")).to_have_count(1)
        expect(commands.filter(has_text="GET /title")).to_have_count(1)
        driver.title  # noqa: B018 - one more command, which the open page shows
        expect(commands.filter(has_text="GET /title")).to_have_count(2, timeout=20_000)
        screenshot(page, "session")

        page.goto("/ui/sessions")
        expect(row).to_have_count(1)
        screenshot(page, "sessions")
        row.get_by_role("button", name=f"Kill session {number}").click()
        page.get_by_role("dialog").get_by_role("button", name="Kill session").click()
        expect(page.get_by_text("No live session")).to_be_visible(timeout=20_000)
        with pytest.raises(InvalidSessionIdException, match="killed by alice-"):
            driver.title  # noqa: B018
    finally:
        with contextlib.suppress(WebDriverException):  # killed above: nothing left to quit
            driver.quit()

    page.get_by_label("State").select_option("all")
    expect(page).to_have_url(re.compile(r"state=all"))
    ended = page.locator(f'[data-session="{number}"]')
    expect(ended.locator(".badge")).to_have_text("ended")
    expect(ended.get_by_role("button", name=re.compile("Kill"))).to_have_count(0)
    ended.get_by_role("link", name=f"#{number}").click()
    expect(page.get_by_role("status")).to_contain_text(re.compile("kill", re.I))
    shot = page.get_by_role("img", name=re.compile(f"session {number}"))
    expect(shot).to_be_visible(timeout=20_000)
    assert shot.evaluate("img => img.complete && img.naturalWidth > 0")
    with farm.client() as client:
        free = client.get("/api/v1/devices", params={"kind": "browser"}).json()["devices"]
    assert [d["state"] for d in free] == ["free"]


def test_a_viewer_is_offered_no_kill_and_the_api_refuses_one(browse: Page, farm: LiveHub) -> None:
    page = browse
    sign_in(page, token(farm, "viewer"))
    driver = selenium(farm, token(farm, "operator"))
    try:
        page.goto("/ui/sessions")
        row = page.locator("[data-session]")
        expect(row.locator(".badge")).to_have_text("active")
        number = row.get_attribute("data-session")
        expect(page.get_by_role("button", name=re.compile("Kill"))).to_have_count(0)
        row.get_by_role("link", name=f"#{number}").click()
        expect(page.get_by_role("heading", name=f"Session #{number}")).to_be_visible()
        expect(page.get_by_role("button", name=re.compile("Kill"))).to_have_count(0)
        status = page.evaluate(
            "async (id) => (await fetch(`/api/v1/sessions/${id}`, {method: 'DELETE'})).status",
            number,
        )
        assert status == 403
        assert driver.title == ""  # the session goes on
    finally:
        driver.quit()


def test_devices_are_paged_and_filtered_by_the_hub(browse: Page, farm: LiveHub) -> None:
    page = browse
    assert farm.admin_token is not None
    sign_in(page, farm.admin_token)
    page.goto("/ui/agents")
    devices = page.get_by_test_id("devices-table").locator("tbody tr")
    expect(devices).to_have_count(50)  # a page, not everything at once
    expect(page.get_by_test_id("device-counts")).to_have_text(f"{PHONES + 1} free")
    pages = page.get_by_role("navigation", name="Pages of devices")
    pages.get_by_role("button", name="Next →").click()
    expect(devices).to_have_count(PHONES + 1 - 50)
    expect(page).to_have_url(re.compile(r"devices_cursor="))
    expect(pages.get_by_role("button", name="Next →")).to_have_count(0)
    pages.get_by_role("button", name="← Previous").click()
    expect(devices).to_have_count(50)

    devices_filters = page.get_by_role("search", name="Filter devices")
    devices_filters.get_by_label("Kind").fill("browser")
    expect(devices).to_have_count(1)
    expect(page.locator('[data-device="farm-1:chromium-0"]')).to_contain_text("browserName")
    expect(page).to_have_url(re.compile(r"kind=browser"))
    devices_filters.get_by_role("button", name="Clear filters").click()
    expect(devices).to_have_count(50)
    devices_filters.get_by_label("Label").fill("pool")
    expect(page.get_by_role("alert")).to_contain_text("give KEY=VALUE")
    devices_filters.get_by_label("Label").fill("pool=phones")
    devices_filters.get_by_label("State").select_option("free")
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(devices).to_have_count(50)
    page.reload()  # the address holds the filters
    expect(devices_filters.get_by_label("Label")).to_have_value("pool=phones")
    pages.get_by_role("button", name="Next →").click()
    expect(devices).to_have_count(PHONES - 50)
    screenshot(page, "devices")
    devices_filters.get_by_label("State").select_option("busy")
    expect(page.get_by_text("No device matches the filters.")).to_be_visible()

    agents_filters = page.get_by_role("search", name="Filter agents")
    agents_filters.get_by_label("State").select_option("offline")
    expect(page.get_by_text("No agent matches the filters.")).to_be_visible()
    agents_filters.get_by_label("State").select_option("online")
    expect(page.locator('[data-agent="farm-1"] .badge')).to_have_text("online")
