"""Schedules and webhooks in Chromium against a real hub and agent, and what each role is
offered: schedules added, run, paused and deleted from the UI with their next fire times;
webhooks added (the secret shown once), pinged, every attempt shown as it is made."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import new_page, screenshot
from tests.browser.test_sign_in import sign_in
from tests.conftest import LiveHub
from tests.support.jobs import echo_job, start, wait_state

pytestmark = [pytest.mark.browser, pytest.mark.integration]

DESCRIPTOR = """name: nightly-smoke
tests:
  - name: hello
    steps:
      - {name: say, plugin: echo, params: {text: hi}}
"""
BROKEN = """name: broken
tests:
  - name: hello
    steps:
      - name: say
        plugin: nope
"""


class Receiver(BaseHTTPRequestHandler):
    """Answers POST /ok with 200 and anything else with 500; remembers the paths."""

    paths: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.paths.append(self.path)
        status = 200 if self.path == "/ok" else 500
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"no")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    """A webhook receiver on loopback; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture
def in_new_york(browser: Browser, ui_hub: LiveHub) -> Iterator[Page]:
    """A page of a viewer in New York."""
    context, page = new_page(browser, ui_hub.url, timezone_id="America/New_York")
    yield page
    errors = page.errors  # type: ignore[attr-defined]
    context.close()
    assert errors == [], errors


def test_a_schedule_is_added_run_paused_and_deleted(
    in_new_york: Page, ui_hub: LiveHub, tmp_path: Path
) -> None:
    page = in_new_york
    page.goto("/ui/schedules")
    expect(page.get_by_text("No schedules yet")).to_be_visible()
    page.get_by_role("button", name="Add schedule").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("nightly-ui")
    dialog.get_by_label("Cron").fill("61 2 * * *")
    dialog.get_by_label("Time zone").fill("Europe/Berlin")
    dialog.get_by_label("Params").fill("version=2\noops")
    dialog.get_by_test_id("descriptor").fill(BROKEN)
    dialog.get_by_role("button", name="Add schedule").click()
    expect(dialog.get_by_role("alert")).to_contain_text("line 2: give a parameter as NAME=VALUE")
    dialog.get_by_label("Params").fill("")
    dialog.get_by_role("button", name="Add schedule").click()
    expect(dialog.get_by_role("alert").first).to_contain_text("is not a cron expression")
    dialog.get_by_label("Cron").fill("0 2 * * *")
    dialog.get_by_role("button", name="Add schedule").click()
    errors = dialog.get_by_test_id("schedule-errors")
    expect(errors).to_contain_text("Line 6, /descriptor/tests/0/steps/0/plugin")
    expect(dialog.locator(".gutter .bad")).to_have_text("6")
    uploaded = tmp_path / "nightly.yaml"
    uploaded.write_text(DESCRIPTOR)
    dialog.locator('input[type="file"]').set_input_files(uploaded)  # "Upload file…"
    expect(dialog.get_by_test_id("descriptor")).to_have_value(DESCRIPTOR)
    dialog.get_by_role("button", name="Add schedule").click()

    expect(page).to_have_url(re.compile(r"/ui/schedules/\d+$"))
    fires = page.get_by_test_id("next-fires").locator("li")
    expect(fires).to_have_count(5)
    with ui_hub.client() as client:
        schedule_id = page.url.rsplit("/", 1)[1]
        next_fire = client.get(f"/api/v1/schedules/{schedule_id}").json()["next_fires"][0]
    here = datetime.fromisoformat(next_fire).astimezone(ZoneInfo("America/New_York"))
    day = f"{here.strftime('%b')} {here.day}, {here.year}"
    viewer = rf"{day}, {here.strftime('%-I:%M:%S')}\s*{here.strftime('%p')}"
    expect(fires.first).to_contain_text(re.compile(viewer))  # in the viewer's zone
    expect(fires.first).to_contain_text(re.compile(r"2:00\s*AM Europe/Berlin"))  # and its own
    expect(fires.first).to_contain_text(re.compile(r"in \d+"))  # and relative
    page.get_by_role("link", name="Schedules").click()
    row = page.locator('[data-schedule="nightly-ui"]')
    expect(row.get_by_test_id("next-fire")).to_contain_text(re.compile(r"in \d+"))
    expect(row.get_by_test_id("last-job")).to_have_text("none yet")
    row.get_by_role("button", name="Run schedule nightly-ui now").click()
    expect(page.get_by_role("status")).to_contain_text("Started job #")
    expect(row.get_by_test_id("last-job")).to_have_text(re.compile(r"#\d+"))
    with ui_hub.client() as client:
        body = {"name": "from-the-api", "cron": "*/5 * * * *", "descriptor": DESCRIPTOR}
        assert client.post("/api/v1/schedules", json=body).status_code == 201
    expect(page.locator('[data-schedule="from-the-api"]')).to_be_visible()  # without a reload
    screenshot(page, "schedules")
    row.get_by_role("button", name="Pause schedule nightly-ui").click()
    expect(row.locator(".badge")).to_have_text("paused")
    expect(row).to_contain_text("paused")
    row.get_by_role("button", name="Resume schedule nightly-ui").click()
    expect(row.locator(".badge")).to_have_text("enabled")
    row.get_by_role("link", name="nightly-ui").click()
    jobs = page.get_by_test_id("schedule-jobs").locator("tbody tr")
    expect(jobs).to_have_count(1)
    page.get_by_role("button", name="Delete schedule nightly-ui").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete schedule").click()
    expect(page).to_have_url(re.compile(r"/ui/schedules$"))
    expect(page.locator('[data-schedule="nightly-ui"]')).to_have_count(0)
    with ui_hub.client() as client:
        names = [s["name"] for s in client.get("/api/v1/schedules").json()["schedules"]]
        for schedule in client.get("/api/v1/schedules").json()["schedules"]:
            client.delete(f"/api/v1/schedules/{schedule['schedule_id']}")
    assert names == ["from-the-api"]


def test_a_webhook_is_added_pinged_and_every_attempt_shown(
    page: Page, ui_hub: LiveHub, receiver: str
) -> None:
    page.goto("/ui/webhooks")
    expect(page.get_by_text("No webhooks yet")).to_be_visible()
    page.get_by_role("button", name="Add webhook").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("URL").fill(f"{receiver}/fail")
    dialog.get_by_label("job.finished").check()
    dialog.get_by_label("Secret").fill("short")
    dialog.get_by_role("button", name="Add webhook").click()
    expect(dialog.get_by_role("alert")).to_contain_text("at least 16 characters")
    dialog.get_by_label("Secret").fill("")
    dialog.get_by_label("Only jobs tagged").fill("ui-hooks")
    dialog.get_by_role("button", name="Add webhook").click()
    secret = page.get_by_test_id("secret").inner_text()
    assert len(secret) >= 40
    row = page.get_by_test_id("webhooks-table").locator("tbody tr").first
    expect(row).to_contain_text("job.failed")
    expect(row).to_contain_text("job.finished")
    row.get_by_role("link").click()

    expect(page).to_have_url(re.compile(r"/ui/webhooks/\d+$"))
    expect(page.get_by_text("No deliveries yet")).to_be_visible()
    with ui_hub.client() as client:
        wait_state(client, start(client, echo_job("hooked", tags=["ui-hooks"])))
    deliveries = page.get_by_test_id("deliveries-table").locator("tr[data-delivery]")
    expect(deliveries).to_have_count(1, timeout=20_000)  # arrived without a reload
    first = deliveries.first
    expect(first).to_contain_text("job.finished")
    expect(first).to_contain_text("hooked")
    expect(first).to_contain_text("HTTP 500", timeout=20_000)  # its first attempt, live
    expect(first.locator(".badge").last).to_have_text("pending")
    first.get_by_role("button", name=re.compile("Attempts of delivery")).click()
    attempts = page.get_by_test_id("attempts")
    expect(attempts.locator("tr[data-attempt]")).to_have_count(1)
    expect(attempts).to_contain_text("HTTP 500: no")
    expect(attempts).to_contain_text("Next attempt in")
    screenshot(page, "webhook")
    page.get_by_role("button", name=re.compile("Pause webhook")).click()
    expect(page.locator(".page-head .badge")).to_have_text("paused")
    page.get_by_role("button", name=re.compile("Delete webhook")).click()
    page.get_by_role("dialog").get_by_role("button", name="Delete webhook").click()
    expect(page).to_have_url(re.compile(r"/ui/webhooks$"))
    expect(page.get_by_text("No webhooks yet")).to_be_visible()


def test_a_ping_is_delivered_and_can_be_sent_again(
    page: Page, ui_hub: LiveHub, receiver: str
) -> None:
    with ui_hub.client() as client:
        body = {"url": f"{receiver}/ok", "events": ["job.failed"]}
        hook = client.post("/api/v1/webhooks", json=body).json()
    try:
        page.goto("/ui/webhooks")
        page.get_by_role("button", name=f"Ping webhook {hook['webhook_id']}").click()
        expect(page).to_have_url(re.compile(f"/ui/webhooks/{hook['webhook_id']}$"))
        delivery = page.get_by_test_id("deliveries-table").locator("tr[data-delivery]")
        expect(delivery).to_have_count(1)
        expect(delivery.locator(".badge")).to_have_text("delivered", timeout=20_000)
        expect(delivery).to_contain_text("HTTP 200")
        delivery.get_by_role("button", name=re.compile("Attempts of delivery")).click()
        page.get_by_role("button", name="Redeliver").click()
        attempts = page.get_by_test_id("attempts").locator("tr[data-attempt]")
        expect(attempts).to_have_count(2, timeout=20_000)
        expect(attempts.last).to_contain_text("200")
    finally:
        with ui_hub.client() as client:
            client.delete(f"/api/v1/webhooks/{hook['webhook_id']}")
    assert Receiver.paths.count("/ok") == 2


@pytest.fixture
def signed_in(browser: Browser, auth_hub: LiveHub) -> Iterator[tuple[Page, str]]:
    """A fresh page on the hub with auth, and a finished job to look at."""
    context, page = new_page(browser, auth_hub.url)
    with auth_hub.client() as admin:
        job_id = start(admin, echo_job("roles"))
        wait_state(admin, job_id)
        body = {"name": f"roles-{job_id}", "cron": "0 2 * * *", "descriptor": DESCRIPTOR}
        assert admin.post("/api/v1/schedules", json=body).status_code == 201
    yield page, str(job_id)
    errors = page.errors  # type: ignore[attr-defined]
    context.close()
    assert errors == [], errors


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_each_role_is_offered_what_it_may_do(
    signed_in: tuple[Page, str], auth_hub: LiveHub, role: str
) -> None:
    page, job_id = signed_in
    with auth_hub.client() as admin:
        token = admin.post("/api/v1/tokens", json={"name": f"{role}-r", "role": role}).json()
    sign_in(page, token["token"])
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Schedules")).to_be_visible()
    expect(nav.get_by_role("link", name="Test cases")).to_be_visible()
    expect(nav.get_by_role("link", name="Webhooks")).to_have_count(0)
    page.goto("/ui/webhooks")
    expect(page.get_by_text("Webhooks is for admin users")).to_be_visible()
    page.goto(f"/ui/jobs/{job_id}")
    expect(page.locator(".page-head .badge")).to_have_text("completed")
    operator = role == "operator"
    expect(page.get_by_role("button", name=f"Delete job {job_id}")).to_have_count(int(operator))
    page.goto("/ui/schedules")
    row = page.locator(f'[data-schedule="roles-{job_id}"]')
    expect(row).to_be_visible()
    expect(page.get_by_role("button", name="Add schedule")).to_have_count(int(operator))
    expect(row.get_by_role("button", name=re.compile("Run schedule"))).to_have_count(int(operator))
    status = page.evaluate(
        "async (id) => (await fetch(`/api/v1/jobs/${id}`, {method: 'DELETE'})).status", job_id
    )
    assert status == (202 if operator else 403)
