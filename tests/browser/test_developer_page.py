"""Developer mode in the browser: two operators, one job, Debian's Chromium against a real hub
and agent (auth on, so each browser context is a different user)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import new_page, screenshot
from tests.browser.test_sign_in import sign_in
from tests.conftest import LiveHub
from tests.integration.test_devmode import running, step_state, steps_job
from tests.support.jobs import start, wait_state

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def operators(browser: Browser, auth_hub: LiveHub) -> Iterator[dict[str, Page]]:
    """Two signed-in operators, each in a browser context of their own."""
    contexts: list[BrowserContext] = []
    pages: dict[str, Page] = {}
    with auth_hub.client() as admin:
        for name in ("dev-alice", "dev-carl"):
            token = admin.post("/api/v1/tokens", json={"name": name, "role": "operator"})
            context, page = new_page(browser, auth_hub.url)
            sign_in(page, token.json()["token"])
            contexts.append(context)
            pages[name] = page
    yield pages
    errors = [e for page in pages.values() for e in page.errors]  # type: ignore[attr-defined]
    for context in contexts:
        context.close()
    assert errors == [], errors


def test_pause_look_around_reload_refuse_another_and_resume(
    operators: dict[str, Page], auth_hub: LiveHub
) -> None:
    alice, carl = operators["dev-alice"], operators["dev-carl"]
    with auth_hub.client() as client:
        job_id = start(client, steps_job("dev-browser", first_sleep=4.0))
        running(client, job_id)

        alice.goto(f"/ui/jobs/{job_id}")
        alice.get_by_test_id("developer-mode").click()
        alice.get_by_test_id("dev-start").click()
        expect(alice.get_by_test_id("dev-holder")).to_contain_text("dev-alice")
        expect(alice.get_by_test_id("dev-tabs")).to_have_text("1")
        alice.get_by_test_id("dev-pause-at").fill("two")
        alice.get_by_role("button", name="Set", exact=True).click()
        expect(alice.get_by_test_id("dev-paused")).to_contain_text("reached step 'two'")
        assert step_state(client, job_id, 1) == "pending"  # step 2 has not started
        assert client.get(f"/api/v1/jobs/{job_id}").json()["state"] == "paused"

        carl.goto(f"/ui/jobs/{job_id}/developer")
        carl.get_by_test_id("dev-start").click()
        expect(carl.get_by_test_id("dev-messages")).to_contain_text("dev-alice holds job")

        alice.get_by_test_id("dev-command").fill("echo hello-from-the-browser")
        alice.get_by_test_id("dev-run").click()
        expect(alice.get_by_test_id("dev-output")).to_contain_text("hello-from-the-browser")
        alice.get_by_test_id("dev-ls").click()
        expect(alice.get_by_test_id("dev-listing")).to_contain_text("task-")

        second = alice.context.new_page()
        second.goto(f"/ui/jobs/{job_id}/developer")
        second.get_by_test_id("dev-start").click()  # joins alice's session
        expect(alice.get_by_test_id("dev-tabs")).to_have_text("2")  # the same developer's tab
        second.close()
        expect(alice.get_by_test_id("dev-tabs")).to_have_text("1")
        alice.reload()
        expect(alice.get_by_test_id("dev-holder")).to_contain_text("dev-alice")
        expect(alice.get_by_test_id("dev-tabs")).to_have_text("1")  # back after the reload
        expect(alice.get_by_test_id("dev-paused")).to_contain_text("reached step 'two'")
        alice.get_by_test_id("dev-command").fill("echo looked-around")
        alice.get_by_test_id("dev-run").click()
        expect(alice.get_by_test_id("dev-output").first).to_contain_text("looked-around")
        screenshot(alice, "developer")

        alice.get_by_test_id("dev-resume").click()
        assert wait_state(client, job_id)["state"] == "completed"
        expect(alice.get_by_test_id("dev-messages")).to_contain_text("job_finished")
