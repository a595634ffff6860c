"""The web UI in Chromium against a real hub and agent: counts, live jobs, live inventory."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import new_page, screenshot
from tests.conftest import LiveHub
from tests.support.jobs import cmd_job, echo_job, start, wait_state
from tests.support.processes import Agent

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SLOW_PRINTER = """name: ui-live
tags: [ui, live]
tests:
  - name: counting
    devices: {count: 1}
    steps:
      - {name: hello, plugin: echo, params: {text: "\\u001b[32mgreen\\u001b[0m hello"}}
      - name: count
        plugin: cmd
        params:
          executable: python3
          args:
            - -u
            - -c
            - "import time\\nfor i in range(30):\\n    print('line', i); time.sleep(0.1)"
"""


def test_the_overview_shows_the_apis_counts(page: Page, ui_hub: LiveHub) -> None:
    with ui_hub.client() as client:
        finished = [start(client, echo_job(f"nightly-{n}", tags=["nightly"])) for n in range(3)]
        finished.append(start(client, cmd_job("flaky", "raise SystemExit(3)", tags=["nightly"])))
        for job_id in finished:
            wait_state(client, job_id)
        page.goto("/ui/")
        expect(page.get_by_test_id("finished-completed")).not_to_have_text("0")
        counts = client.get("/api/v1/overview").json()
    for key, value in {
        "agents-online": counts["agents"]["online"],
        "agents-offline": counts["agents"]["offline"],
        "devices-free": counts["devices"]["free"],
        "devices-busy": counts["devices"]["busy"],
        "jobs-running": counts["jobs"]["running"],
        "jobs-queued": counts["jobs"]["queued"],
        "finished-completed": counts["finished_last_hour"]["completed"],
        "finished-failed": counts["finished_last_hour"]["failed"],
    }.items():
        expect(page.get_by_test_id(key)).to_have_text(str(value))
    expect(page.get_by_role("img", name="Jobs finished per hour, by outcome")).to_be_visible()
    screenshot(page, "overview")


def test_a_job_started_from_the_ui_goes_green_live_with_a_growing_log(page: Page) -> None:
    page.goto("/ui/jobs")
    page.get_by_role("button", name="Start job").click()
    page.get_by_test_id("descriptor").fill(SLOW_PRINTER)
    page.get_by_role("button", name="Start job").last.click()
    expect(page).to_have_url(re.compile(r"/ui/jobs/\d+$"))
    count = page.locator('[data-step="count"]')
    expect(count).to_have_attribute("data-state", "running")
    log = page.get_by_test_id("log").locator(".log-line")
    expect(log.filter(has_text="line 3")).to_have_count(1)
    seen = log.count()
    expect(log.filter(has_text="line 12")).to_have_count(1)
    assert log.count() > seen, "the log tail did not grow while the step ran"
    expect(count).to_have_attribute("data-state", "passed", timeout=20_000)
    expect(page.locator('[data-step="hello"]')).to_have_attribute("data-state", "passed")
    expect(page.locator(".page-head .badge")).to_have_text("completed")
    green = page.get_by_test_id("log").locator("span[style*='color']", has_text="green")
    expect(green).to_have_count(1)  # the ANSI colour, rendered
    # the first line names its device and step (either slot: the allocator picks one)
    expect(log.first.locator(".log-src")).to_have_text(re.compile(r"^slot-\d · hello$"))
    expect(log).to_have_count(31)
    screenshot(page, "job")


def test_a_job_stopped_from_the_ui_ends_cancelled(page: Page, ui_hub: LiveHub) -> None:
    with ui_hub.client() as client:
        job_id = start(client, cmd_job("ui-stop", "import time; time.sleep(60)"))
    page.goto(f"/ui/jobs/{job_id}")
    expect(page.locator('[data-step="run"]')).to_have_attribute("data-state", "running")
    page.get_by_role("button", name=f"Stop job {job_id}").click()
    expect(page.locator(".page-head .badge")).to_have_text("cancelled", timeout=20_000)
    expect(page.get_by_role("button", name=f"Retry job {job_id}")).to_be_visible()


def test_a_validation_error_is_shown_at_its_line(page: Page) -> None:
    page.goto("/ui/jobs")
    page.get_by_role("button", name="Start job").click()
    page.get_by_test_id("descriptor").fill(
        "name: broken\ntests:\n  - name: t\n    steps:\n      - name: run\n        plugin: cmd\n"
        "        params: {args: [x]}\n"
    )
    page.get_by_role("button", name="Start job").last.click()
    errors = page.get_by_test_id("start-errors")
    expect(errors).to_contain_text("Line 7, /tests/0/steps/0/params/executable")
    expect(page.locator(".gutter .bad")).to_have_text("7")
    expect(page).to_have_url(re.compile(r"/ui/jobs$"))


def test_an_agent_appears_and_goes_offline_without_a_reload(
    page: Page, ui_hub: LiveHub, tmp_path_factory: pytest.TempPathFactory
) -> None:
    page.goto("/ui/agents")
    expect(page.locator('[data-agent="lab-1"]')).to_be_visible()
    late = Agent(tmp_path_factory.mktemp("late"), ui_hub.url, "late-agent", slots=1)
    late.start()
    try:
        row = page.locator('[data-agent="late-agent"]')
        expect(row.locator(".badge")).to_have_text("online", timeout=20_000)
        expect(page.locator('[data-device="late-agent:slot-0"]')).to_be_visible()
        screenshot(page, "agents")
    finally:
        late.kill()
    expect(row.locator(".badge")).to_have_text("offline", timeout=20_000)
    expect(page.locator('[data-device="late-agent:slot-0"] .badge')).to_have_text("offline")


def test_the_jobs_page_filters_and_shares_its_address(page: Page, ui_hub: LiveHub) -> None:
    with ui_hub.client() as client:
        for n in range(3):
            start(client, echo_job(f"filtered-{n}", tags=["picked"] if n == 1 else ["other"]))
    page.goto("/ui/jobs")
    page.get_by_label("Tag").fill("picked")
    expect(page).to_have_url(re.compile(r"tag=picked"))
    rows = page.get_by_test_id("jobs-table").locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("filtered-1")
    shared = page.url
    page.goto(shared)
    expect(rows).to_have_count(1)
    page.get_by_role("button", name="Clear filters").click()
    expect(page).to_have_url(re.compile(r"/ui/jobs$"))
    screenshot(page, "jobs")


def test_the_api_docs_work_without_other_hosts(browser: Browser, ui_hub: LiveHub) -> None:
    context, page = new_page(browser, ui_hub.url)
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(request.url.split("/")[2]))
    try:
        page.goto("/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("testfleet hub")
        page.get_by_text("/api/v1/overview").first.click()  # an operation opens, offline too
        expect(page.get_by_text("Counts and throughput of the lab").first).to_be_visible()
    finally:
        context.close()
    assert hosts == {ui_hub.url.split("/")[2]}
