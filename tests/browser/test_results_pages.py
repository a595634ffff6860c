"""What a job leaves behind, in Chromium against a real hub and agent: its test report and
artifacts appear on its page while it runs, a case's history flags it flaky, and a job
deleted from its page leaves an open job list without a reload."""

from __future__ import annotations

import hashlib
import re
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import new_page, screenshot
from tests.conftest import LiveHub
from tests.support.jobs import cmd_job, start, wait_state

pytestmark = [pytest.mark.browser, pytest.mark.integration]

TRACEBACK = "Traceback (most recent call last):\n  File 'test_math.py', line 7\nAssertionError"
WRITE = (
    "import os, sys, time\n"
    "time.sleep(float(sys.argv[1]))\n"
    "os.makedirs('reports', exist_ok=True)\n"
    "open('reports/junit.xml', 'w').write(sys.argv[2])\n"
    "open('notes.txt', 'w').write('hello from the step' * 100)\n"
)
NOTES = b"hello from the step" * 100


def junit(answer: str) -> str:
    """A JUnit report of four cases; test_answer passes or fails."""
    failure = f'<failure message="expected 42, got 41">{TRACEBACK}</failure>'
    case = '<testcase classname="tests.test_math" name="{}" time="{}">{}</testcase>'
    cases = [
        case.format("test_add", 0.01, ""),
        case.format("test_answer", 0.25, "" if answer == "pass" else failure),
        case.format("test_later", "", '<skipped message="not today"/>'),
        case.format("test_boom", "", '<error message="RuntimeError: boom">stack</error>'),
    ]
    return f'<testsuite name="math">{"".join(cases)}</testsuite>'


def report_job(name: str, *, wait: float = 0, answer: str = "fail") -> dict[str, Any]:
    """A job whose step writes a JUnit report (test_answer passes or fails) and notes.txt."""
    step = {
        "name": "pytest",
        "plugin": "cmd",
        "params": {"executable": "python3", "args": ["-c", WRITE, str(wait), junit(answer)]},
        "artifacts": ["reports/*.xml", "notes.txt"],
    }
    return {"name": name, "tests": [{"name": "unit", "steps": [step]}]}


def test_the_report_and_artifacts_appear_while_the_job_runs(page: Page, ui_hub: LiveHub) -> None:
    with ui_hub.client() as client:
        job_id = start(client, report_job("ui-report", wait=2))
    page.goto(f"/ui/jobs/{job_id}")
    expect(page.locator('[data-step="pytest"]')).to_have_attribute("data-state", "running")
    expect(page.get_by_test_id("test-report")).to_have_count(0)
    expect(page.get_by_test_id("artifacts")).to_contain_text("Files appear here")
    report = page.get_by_test_id("test-report")
    expect(report).to_be_visible(timeout=20_000)  # no reload: it came with the job's events
    counts = report.get_by_test_id("case-counts")
    for outcome, count in {"failed": 1, "error": 1, "skipped": 1, "passed": 1}.items():
        expect(counts.locator(f'[data-outcome="{outcome}"] b')).to_have_text(str(count))
    failed = report.get_by_test_id("failed-cases").locator(".case")
    expect(failed).to_have_count(2)
    answer = failed.filter(has_text="test_answer")
    expect(answer).to_contain_text("expected 42, got 41")
    expect(answer.get_by_test_id("case-detail")).to_contain_text("AssertionError")
    expect(failed.first.locator(".badge")).to_have_text(re.compile("failed|error"))
    expect(page.locator(".page-head .badge")).to_have_text("completed", timeout=20_000)

    table = page.get_by_test_id("artifacts-table")
    notes = table.locator('[data-artifact="notes.txt"]')
    expect(notes).to_contain_text("1.9 KB")  # 1,900 bytes
    expect(table.locator('[data-artifact="reports/junit.xml"]')).to_contain_text("4 cases")
    sha = hashlib.sha256(NOTES).hexdigest()
    expect(notes.locator(".sha code")).to_have_attribute("title", f"SHA-256 {sha}")
    with page.expect_download() as one:
        notes.get_by_role("link", name="notes.txt").click()
    assert one.value.suggested_filename == "notes.txt"
    assert Path(one.value.path()).read_bytes() == NOTES
    with page.expect_download() as every:
        page.get_by_role("link", name="Download all (zip)").click()
    with zipfile.ZipFile(BytesIO(Path(every.value.path()).read_bytes())) as zipped:
        names = zipped.namelist()
    assert sorted(name.split("/", 1)[1] for name in names) == ["notes.txt", "reports/junit.xml"]

    page.get_by_text("All 4 cases").click()
    rows = page.get_by_test_id("cases-table").locator("tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.first.locator(".badge")).to_have_text(re.compile("failed|error"))
    page.get_by_label("Outcome", exact=True).select_option("skipped")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("test_later")
    screenshot(page, "job-results")
    answer.get_by_role("link", name="History across jobs →").click()
    expect(page).to_have_url(
        re.compile(r"/ui/testcases\?name=test_answer&classname=tests.test_math")
    )
    expect(page.get_by_test_id("history").locator(f'[data-job="{job_id}"]')).to_be_visible()


def test_a_case_that_passed_and_failed_is_flagged_flaky_live(page: Page, ui_hub: LiveHub) -> None:
    with ui_hub.client() as client:
        wait_state(client, start(client, report_job("flaky-suite", answer="pass")))
        page.goto("/ui/testcases?name=tests.test_math::test_answer&job_name=flaky-suite")
        history = page.get_by_test_id("history")
        expect(history).to_have_attribute("data-flaky", "false")
        expect(history.locator(".badge", has_text="flaky")).to_have_count(0)
        failing = start(client, report_job("flaky-suite", answer="fail"))
        wait_state(client, failing)
    expect(history).to_have_attribute("data-flaky", "true", timeout=20_000)  # without a reload
    expect(history.locator(".badge", has_text="flaky")).to_be_visible()
    expect(history).to_contain_text("1 passed, 1 failed of 2 runs")
    expect(history.locator(".strip a")).to_have_count(2)
    history.locator(f'[data-job="{failing}"]').get_by_role("link").click()
    expect(page).to_have_url(re.compile(f"/ui/jobs/{failing}$"))


def test_a_case_page_says_what_to_do_when_empty_or_unknown(page: Page) -> None:
    page.goto("/ui/testcases")
    expect(page.get_by_text("Look up a test case")).to_be_visible()
    page.get_by_label("Case", exact=True).fill("test_nobody_wrote")
    page.get_by_role("button", name="Show history").click()
    expect(page).to_have_url(re.compile(r"name=test_nobody_wrote"))
    expect(page.get_by_text("No test case is called test_nobody_wrote")).to_be_visible()


def test_a_job_deleted_from_its_page_leaves_an_open_list_live(
    browser: Browser, page: Page, ui_hub: LiveHub
) -> None:
    with ui_hub.client() as client:
        running = start(client, cmd_job("ui-not-yet", "import time; time.sleep(30)"))
        job_id = start(client, report_job("ui-delete-me"))
        wait_state(client, job_id)
    context, watcher = new_page(browser, ui_hub.url)
    try:
        watcher.goto("/ui/jobs")
        row = watcher.locator(f'[data-job="{job_id}"]')
        expect(row).to_be_visible()
        page.goto(f"/ui/jobs/{running}")
        expect(page.locator('[data-step="run"]')).to_have_attribute("data-state", "running")
        expect(page.get_by_role("button", name=f"Delete job {running}")).to_have_count(0)
        page.goto(f"/ui/jobs/{job_id}")
        page.get_by_role("button", name=f"Delete job {job_id}").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text("2 artifact files")
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_have_count(0)
        page.get_by_role("button", name=f"Delete job {job_id}").click()
        page.get_by_role("dialog").get_by_role("button", name="Delete job").click()
        expect(page).to_have_url(re.compile(r"/ui/jobs$"))
        expect(page.locator(f'[data-job="{job_id}"]')).to_have_count(0)
        expect(row).to_have_count(0)  # the other page, without a reload
        assert watcher.errors == []  # type: ignore[attr-defined]
    finally:
        context.close()
        with ui_hub.client() as client:
            client.post(f"/api/v1/jobs/{running}/stop")
    with ui_hub.client() as client:
        assert client.get(f"/api/v1/jobs/{job_id}").status_code == 404
