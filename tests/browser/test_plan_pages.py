"""The test plan pages in Chromium against a real hub (auth on) and its local agent running
the example plans: an operator runs a case from the catalog (a bad composition's problem
shown at its line first), its instances and outcomes per group arrive live, the outputs
download; a run's sync state shows while its instances wait at a barrier; a viewer is
offered no Run and the daemon API refuses one."""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import new_page, screenshot
from tests.browser.test_sign_in import sign_in
from tests.conftest import LiveHub
from tests.support.plans import import_example_plans
from tests.support.processes import Agent, Hub

pytestmark = [pytest.mark.browser, pytest.mark.integration]
LOCAL = "plan-local"


@pytest.fixture(scope="module")
def plan_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    """A hub with auth, its local agent, and the example plans imported."""
    workdir = tmp_path_factory.mktemp("plan-hub")
    hub = Hub(workdir, auth=True, extra=["--local-agent", LOCAL])
    admin = hub.create_token("plan-admin", "admin")
    agent_token = hub.create_token("plan-agent", "agent")
    hub.start()
    agent = Agent(
        workdir,
        hub.url,
        LOCAL,
        slots=1,
        token=agent_token,
        extra=["--cache-dir", str(workdir / "cache")],
    ).start()
    live = LiveHub(hub, agent, admin_token=admin)
    with live.client() as client:
        agent.wait_online(client)
        import_example_plans(client, "ping", "quorum")
    yield live
    agent.stop()
    hub.stop()


@pytest.fixture
def browse(browser: Browser, plan_hub: LiveHub) -> Iterator[Page]:
    context, page = new_page(browser, plan_hub.url, accept_downloads=True)
    yield page
    errors = page.errors  # type: ignore[attr-defined]
    context.close()
    assert errors == [], errors


def token(hub: LiveHub, name: str, role: str) -> str:
    with hub.client() as admin:
        answer = admin.post("/api/v1/tokens", json={"name": name, "role": role})
    return str(answer.json()["token"])


def test_an_operator_runs_a_case_and_watches_it_to_its_outcome(
    browse: Page, plan_hub: LiveHub
) -> None:
    page = browse
    sign_in(page, token(plan_hub, "olga", "operator"))
    page.goto("/ui/plans")
    expect(page.get_by_role("heading", name="Test plans", level=1)).to_be_visible()
    catalog = page.get_by_test_id("plans-table")
    expect(catalog.locator('[data-plan="quorum"] [data-case]')).to_have_count(2)
    expect(catalog.locator('[data-plan="quorum"] [data-case="vote"]')).to_contain_text("verdict")
    expect(page.get_by_text("Nothing has run yet")).to_be_visible()

    page.get_by_role("button", name="Run quorum vote").click()
    editor = page.get_by_role("textbox", name="Composition")
    composition = json.loads(editor.input_value())
    assert composition["global"] == {
        "plan": "quorum",
        "case": "vote",
        "total_instances": 3,
        "builder": "exec:python",
        "runner": "local:exec",
    }
    composition["global"]["total_instances"] = 7
    editor.fill(json.dumps(composition, indent=2))
    page.get_by_role("dialog").get_by_role("button", name="Run", exact=True).click()
    errors = page.get_by_test_id("run-errors")
    expect(errors).to_contain_text(re.compile(r"Line 9, /global/total_instances"))
    expect(page.locator(".gutter .bad")).to_have_text("9")

    composition["global"]["total_instances"] = 3
    editor.fill(json.dumps(composition, indent=2))
    page.get_by_role("dialog").get_by_role("button", name="Run", exact=True).click()
    expect(page).to_have_url(re.compile(r"/ui/plans/tasks/[\w-]+$"))
    run_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_role("heading", name=f"Run {run_id}")).to_be_visible()
    group = page.locator('section[data-group="all"]')
    expect(group.locator("[data-instance]")).to_have_count(3, timeout=30_000)
    expect(page.locator(".page-head .badge")).to_have_text("success", timeout=60_000)
    expect(group.get_by_test_id("group-ok")).to_have_text("3/3 ok")
    expect(group.locator("[data-instance] .badge")).to_have_text(["success"] * 3)
    expect(page.get_by_test_id("outcomes")).to_contain_text("all 3/3")
    expect(page.get_by_test_id("task-log")).to_contain_text(f"task {run_id}: complete")
    screenshot(page, "plan-run")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download outputs (.tgz)").click()
    data = Path(download.value.path()).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        names = set(archive.getnames())
    assert {f"{run_id}/all/{seq}/outcome.json" for seq in (1, 2, 3)} <= names

    page.goto("/ui/plans")
    row = page.locator(f'[data-task="{run_id}"]')
    expect(row.locator(".badge")).to_have_text(["success", "all 3/3"])


def test_the_sync_state_shows_while_instances_wait_at_a_barrier(
    browse: Page, plan_hub: LiveHub
) -> None:
    page = browse
    secret = token(plan_hub, "oscar", "operator")
    sign_in(page, secret)
    page.goto("/ui/plans?type=run")
    composition = {
        "metadata": {"name": "linger", "author": "tests"},
        "global": {"plan": "quorum", "case": "linger", "total_instances": 2},
        "groups": [
            {"id": "waiters", "instances": {"count": 2}, "run": {"test_params": {"wait": "8s"}}}
        ],
    }
    with plan_hub.client() as client:
        headers = {"Authorization": f"Bearer {secret}"}
        answer = client.post("/run", json=composition, headers=headers)
    assert answer.status_code == 201, answer.text
    run_id = answer.json()["task_id"]
    row = page.locator(f'[data-task="{run_id}"]')
    expect(row).to_be_visible(timeout=20_000)  # no reload: the plans topic
    row.get_by_role("link", name=run_id).click()
    lingering = page.get_by_test_id("sync-states").locator('[data-state="lingering"]')
    waiting = re.compile(r"lingering\s*2\s*2 waiting for 3")
    expect(lingering).to_contain_text(waiting, timeout=30_000)
    expect(page.locator(".page-head .badge")).to_have_text("processing")
    screenshot(page, "plan-sync")
    expect(page.locator(".page-head .badge")).to_have_text("failure", timeout=60_000)
    group = page.locator('section[data-group="waiters"]')
    expect(group.get_by_test_id("group-ok")).to_have_text("0/2 ok")
    expect(group.locator("[data-instance] .badge")).to_have_text(["failure"] * 2)
    page.goto("/ui/plans")
    expect(page.locator("[data-task]").first).to_be_visible()
    screenshot(page, "plans")


def test_a_viewer_is_offered_no_run_and_the_daemon_refuses_one(
    browse: Page, plan_hub: LiveHub
) -> None:
    page = browse
    sign_in(page, token(plan_hub, "vera", "viewer"))
    page.goto("/ui/plans")
    expect(page.locator('[data-plan="ping"]')).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Run "))).to_have_count(0)
    body = {
        "global": {"plan": "ping", "case": "ping", "total_instances": 2},
        "groups": [{"id": "g", "instances": {"count": 2}}],
    }
    status = page.evaluate(
        """async (body) => (await fetch('/run', {method: 'POST',
            headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)})).status""",
        body,
    )
    assert status == 403
