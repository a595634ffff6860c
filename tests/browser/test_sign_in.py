"""Signing in, roles and tokens in the web UI, on a hub with auth."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import new_page, screenshot
from tests.conftest import LiveHub
from tests.support.jobs import cmd_job, start

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def fresh(browser: Browser, auth_hub: LiveHub) -> Iterator[Page]:
    context, page = new_page(browser, auth_hub.url)
    yield page
    errors = page.errors  # type: ignore[attr-defined]
    context.close()
    assert errors == [], errors


def sign_in(page: Page, token: str) -> None:
    page.goto("/ui/")
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("user-name")).to_be_visible()  # the cookie is set


def test_sign_in_shows_who_and_sign_out_forgets(fresh: Page, auth_hub: LiveHub) -> None:
    fresh.goto("/ui/jobs")
    expect(fresh.get_by_role("button", name="Sign in")).to_be_visible()
    fresh.get_by_label("Token").fill("tf_not-a-token")
    fresh.get_by_role("button", name="Sign in").click()
    expect(fresh.get_by_role("alert")).to_contain_text("unknown or revoked")
    assert auth_hub.admin_token is not None
    fresh.get_by_label("Token").fill(auth_hub.admin_token)
    fresh.get_by_role("button", name="Sign in").click()
    expect(fresh.get_by_test_id("user-name")).to_have_text("root-admin")
    expect(fresh.locator(".user .role")).to_have_text("admin")
    cookie = next(c for c in fresh.context.cookies() if c["name"] == "testfleet_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert fresh.evaluate("document.cookie") == ""  # no script can read it
    fresh.reload()
    expect(fresh.get_by_test_id("user-name")).to_have_text("root-admin")
    fresh.get_by_role("button", name="Sign out").click()
    expect(fresh.get_by_role("button", name="Sign in")).to_be_visible()
    fresh.reload()
    expect(fresh.get_by_role("button", name="Sign in")).to_be_visible()


def test_a_viewer_sees_no_stop_button_and_a_direct_stop_is_refused(
    fresh: Page, auth_hub: LiveHub
) -> None:
    with auth_hub.client() as admin:
        viewer = admin.post("/api/v1/tokens", json={"name": "vera", "role": "viewer"}).json()
        job_id = start(admin, cmd_job("viewer-sees", "import time; time.sleep(30)"))
    try:
        sign_in(fresh, viewer["token"])
        fresh.goto(f"/ui/jobs/{job_id}")
        expect(fresh.locator('[data-step="run"]')).to_have_attribute("data-state", "running")
        expect(fresh.get_by_role("button", name=f"Stop job {job_id}")).to_have_count(0)
        expect(fresh.get_by_role("button", name="Start again with changes…")).to_have_count(0)
        fresh.goto("/ui/jobs")
        expect(fresh.get_by_role("button", name="Start job")).to_have_count(0)
        expect(fresh.get_by_role("link", name="Tokens")).to_have_count(0)
        answer = fresh.evaluate(
            """async (id) => {
                const r = await fetch(`/api/v1/jobs/${id}/stop`, {method: "POST"});
                return [r.status, (await r.json()).code];
            }""",
            job_id,
        )
        assert answer == [403, "forbidden"]
    finally:
        with auth_hub.client() as admin:
            admin.post(f"/api/v1/jobs/{job_id}/stop")


def test_an_admin_creates_a_token_seen_once_and_revokes_it(fresh: Page, auth_hub: LiveHub) -> None:
    assert auth_hub.admin_token is not None
    sign_in(fresh, auth_hub.admin_token)
    fresh.get_by_role("link", name="Tokens").click()
    fresh.get_by_label("Name").fill("ci-bot")
    fresh.get_by_label("Role").select_option("operator")
    fresh.get_by_role("button", name="Create token").click()
    secret = fresh.get_by_test_id("secret").inner_text()
    assert secret.startswith("tf_")
    row = fresh.locator('[data-token="ci-bot"]')
    expect(row).to_contain_text("active")
    screenshot(fresh, "tokens")
    with auth_hub.client(secret) as bot:
        assert bot.get("/api/v1/jobs").status_code == 200
    fresh.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(row).to_contain_text("revoked")
    with auth_hub.client(secret) as bot:
        assert bot.get("/api/v1/jobs").status_code == 401
    fresh.reload()
    expect(fresh.get_by_test_id("secret")).to_have_count(0)  # shown once only
    fresh.get_by_label("Name").fill("bad name!")
    fresh.get_by_role("button", name="Create token").click()
    expect(fresh.get_by_role("alert")).to_contain_text("Name:")
