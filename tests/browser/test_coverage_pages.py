"""The coverage pages in Chromium against a real hub (auth on) and the example shop running
under the real probe: an operator starts a realtime session from the page, the tests the
application runs appear on it without a reload, one test's coverage and a module's source
with covered and missed lines, Stop; a second build's risks and the tests to run; a viewer
is offered no Start or Stop and the API refuses them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import new_page, screenshot
from tests.browser.test_sign_in import sign_in
from tests.conftest import LiveHub
from tests.integration.test_coverage_probe import App
from tests.support.processes import Hub, cli_command, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "examples" / "apps" / "shop"
PROBE_APP = ROOT / "tests" / "support" / "probe_app.py"


class Lab:
    """A hub with auth and the probe's agent token."""

    def __init__(self, live: LiveHub, agent_token: str, workdir: Path) -> None:
        self.live = live
        self.agent_token = agent_token
        self.workdir = workdir
        self.apps: list[App] = []

    def env(self) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TESTFLEET_")}
        return {**clean, "TESTFLEET_TOKEN": self.agent_token}

    def probe(self, build: str, source: Path) -> list[str]:
        return [
            *cli_command(),
            "probe",
            "--hub",
            self.live.url,
            "--app",
            "shop",
            "--build",
            build,
            "--source",
            str(source / "shop"),
            "--base",
            str(source),
            "--",
        ]

    def start_app(self, build: str) -> App:
        """tests/support/probe_app.py under the probe, obeying commands."""
        log = (self.workdir / f"app-{build}.log").open("a")
        process = subprocess.Popen(
            [*self.probe(build, SHOP), sys.executable, str(PROBE_APP)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=SHOP,
            env=self.env(),
        )
        self.apps.append(App(process, log))
        return self.apps[-1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    workdir = tmp_path_factory.mktemp("coverage-hub")
    hub = Hub(workdir, auth=True)
    admin = hub.create_token("cov-admin", "admin")
    agent_token = hub.create_token("shop-probe", "agent")
    hub.start()
    found = Lab(LiveHub(hub, None, admin_token=admin), agent_token, workdir)  # type: ignore[arg-type]
    yield found
    for app in found.apps:
        app.close()
    hub.stop()


@pytest.fixture
def browse(browser: Browser, lab: Lab) -> Iterator[Page]:
    context, page = new_page(browser, lab.live.url)
    yield page
    errors = page.errors  # type: ignore[attr-defined]
    context.close()
    assert errors == [], errors


def token(lab: Lab, name: str, role: str) -> str:
    with lab.live.client() as admin:
        answer = admin.post("/api/v1/tokens", json={"name": name, "role": role})
    return str(answer.json()["token"])


def test_a_realtime_session_a_tests_source_and_a_new_builds_risks(browse: Page, lab: Lab) -> None:
    page = browse
    sign_in(page, token(lab, "cora", "operator"))
    page.goto("/ui/coverage")
    expect(page.get_by_text("No application has reported yet")).to_be_visible()
    app = lab.start_app("1.0")
    expect(page.locator('[data-app="shop"]')).to_be_visible(timeout=30_000)  # no reload
    expect(page.get_by_test_id("probes-table").locator("[data-probe]")).to_have_count(1)
    expect(page.get_by_text("No session yet")).to_be_visible()

    page.get_by_role("button", name="Start a session on shop").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label(re.compile("Realtime"))).to_be_checked()
    dialog.get_by_label("Test type").fill("MANUAL")
    dialog.get_by_role("button", name="Start session").click()
    expect(page).to_have_url(re.compile(r"/ui/coverage/sessions/[^/?]+$"))
    expect(page.locator(".page-head .badge")).to_have_text("active")
    tests = page.get_by_test_id("tests-table").locator("[data-test]")
    expect(tests).to_have_count(0)
    app.do("web apple test_food")
    app.do("web lamp test_home")
    food = tests.filter(has_text="test_food")
    expect(food).to_have_count(1, timeout=20_000)  # realtime: parts every 2 s, no reload
    expect(tests.filter(has_text="test_home")).to_have_count(1)
    totals = page.get_by_test_id("session-totals")
    expect(totals).not_to_contain_text(re.compile(r"^0\.0 %"))

    food.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"\?test=test_food$"))
    expect(page.get_by_role("heading", name=re.compile("of test test_food"))).to_be_visible()
    page.get_by_test_id("files-table").get_by_role("link", name="shop/pricing.py").click()
    expect(page.get_by_role("heading", name="shop/pricing.py")).to_be_visible()
    source = page.get_by_test_id("source")
    expect(source.locator('[data-line="13"]')).to_have_attribute("data-state", "covered")
    expect(source.locator('[data-line="14"]')).to_have_attribute("data-state", "missed")
    expect(page.get_by_label("Test")).to_have_value("test_food")
    page.get_by_label("Test").select_option("test_home")
    expect(source.locator('[data-line="14"]')).to_have_attribute("data-state", "covered")
    expect(source.locator('[data-line="13"]')).to_have_attribute("data-state", "missed")
    screenshot(page, "coverage-source")

    page.get_by_role("link", name=re.compile("^session ")).click()
    expect(page).to_have_url(re.compile(r"\?test=test_home$"))
    page.get_by_role("link", name="Show every test's coverage").click()
    expect(page).to_have_url(re.compile(r"/ui/coverage/sessions/[^/?]+$"))
    session_id = page.url.rsplit("/", 1)[1]
    screenshot(page, "coverage-session")
    page.get_by_role("button", name=f"Stop session {session_id}").click()
    expect(page.locator(".page-head .badge")).to_have_text("finished", timeout=20_000)
    expect(page.get_by_role("button", name=re.compile("Stop session"))).to_have_count(0)
    app.exit()

    changed = lab.workdir / "shop2"
    shutil.copytree(SHOP, changed, ignore=shutil.ignore_patterns("__pycache__"))
    pricing = changed / "shop" / "pricing.py"
    pricing.write_text(pricing.read_text().replace("return REDUCED\n", "return REDUCED + 0\n"))
    program = [sys.executable, "-m", "shop.main", "--orders", "5"]
    subprocess.run(
        [*lab.probe("2.0", changed), *program],
        cwd=changed,
        env=lab.env(),
        check=True,
        capture_output=True,
        timeout=120,
    )
    page.goto("/ui/coverage")
    expect(page.locator('[data-app="shop"]')).to_contain_text("2.0")
    with lab.live.client() as client:
        wait_until(
            lambda: not client.get("/api/v1/coverage/agents").json()["agents"], 20, 0.1, "no probe"
        )
    screenshot(page, "coverage")
    page.locator('[data-app="shop"]').get_by_role("link", name="2.0").click()
    expect(page.get_by_role("heading", name="Build shop 2.0")).to_be_visible()
    builds = page.get_by_role("navigation", name="Builds of shop")
    expect(builds.get_by_role("link", name="1.0")).to_be_visible()
    risk = page.get_by_test_id("risks-table").locator('[data-risk="shop/pricing.py:tax_rate"]')
    expect(risk).to_contain_text("modified")
    expect(risk).to_contain_text("untested")
    expect(page.get_by_test_id("risks-summary")).to_have_text("0 of 1 tested")
    to_run = page.get_by_test_id("tests-to-run").locator("[data-test]")
    expect(to_run).to_have_text([re.compile("^test_food.*tax_rate"), re.compile("^test_home")])
    screenshot(page, "coverage-build")


def test_a_viewer_is_offered_no_start_or_stop_and_the_api_refuses_them(
    browse: Page, lab: Lab
) -> None:
    page = browse
    app = lab.start_app("3.0")
    with lab.live.client() as admin:
        wait_until(
            lambda: admin.get("/api/v1/coverage/agents").json()["agents"], 30, 0.1, "a probe"
        )
        body = {"type": "START", "payload": {"sessionId": "viewed"}}
        started = admin.post("/api/v1/coverage/apps/shop/dispatch-action", json=body)
    assert started.status_code == 200, started.text
    sign_in(page, token(lab, "vic", "viewer"))
    page.goto("/ui/coverage")
    row = page.locator('[data-coverage-session="viewed"]')
    expect(row.locator(".badge")).to_have_text("active")
    expect(
        page.get_by_role("button", name=re.compile("Start a session|Stop session"))
    ).to_have_count(0)
    row.get_by_role("link", name="viewed").click()
    expect(page.get_by_role("heading", name=re.compile("viewed"))).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Stop|Cancel"))).to_have_count(0)
    status = page.evaluate(
        """async () => (await fetch('/api/v1/coverage/apps/shop/dispatch-action', {
            method: 'POST', headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({type: 'STOP', payload: {sessionId: 'viewed'}})})).status"""
    )
    assert status == 403
    app.exit()
