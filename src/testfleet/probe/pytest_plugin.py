"""pytest plugin: `pytest --testfleet-session --testfleet-app shop` opens a coverage session on
the application's probes for the test run, names each test, and stops the session at the end.

Each test is named to the probe in this process directly (pytest itself running under
`testfleet probe`: exact, per test), else through the hub (ADD_SESSION_DATA, for an
application in another process), and in the `testfleet_headers` fixture
(`{"drill-test-name": <test id>}`) for requests the test sends to a web application, whose
probe middleware turns the header into the test's coverage.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from testfleet.protocol.coverage import TEST_NAME_HEADERS

_KEY = pytest.StashKey["CoverageRun"]()


@dataclass
class CoverageRun:
    """The session of one pytest run."""

    target: dict[str, str | None]
    client: Any
    session_id: str | None = None
    summary: str = ""
    names: list[str] = field(default_factory=list)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("testfleet", "testfleet coverage sessions")
    group.addoption(
        "--testfleet-session",
        action="store_true",
        help="Open a coverage session for this run and record coverage per test.",
    )
    group.addoption("--testfleet-hub", default=None, help="The hub's URL ($TESTFLEET_HUB).")
    group.addoption("--testfleet-token", default=None, help="An API token ($TESTFLEET_TOKEN).")
    group.addoption("--testfleet-app", default=None, help="The application under test.")
    group.addoption("--testfleet-build", default=None, help="Its build (default: the newest).")
    group.addoption("--testfleet-agent", default=None, help="One probe instead of the app's.")
    group.addoption("--testfleet-test-type", default="AUTO", help="The session's test type.")
    group.addoption("--testfleet-session-id", default=None, help="The session's id.")


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("testfleet_session"):
        return
    from testfleet.client import Client
    from testfleet.client.coverage import CoverageClient

    app, agent = config.getoption("testfleet_app"), config.getoption("testfleet_agent")
    if not app and not agent:
        raise pytest.UsageError("--testfleet-session needs --testfleet-app or --testfleet-agent")
    hub = config.getoption("testfleet_hub") or os.environ.get("TESTFLEET_HUB")
    token = config.getoption("testfleet_token") or os.environ.get("TESTFLEET_TOKEN")
    client = Client(hub or "http://127.0.0.1:8470", token)
    target = (
        {"agent": agent} if agent else {"app": app, "build": config.getoption("testfleet_build")}
    )
    config.stash[_KEY] = CoverageRun(target=target, client=CoverageClient(client))


def pytest_sessionstart(session: pytest.Session) -> None:
    run = session.config.stash.get(_KEY, None)
    if run is None:
        return
    from testfleet import probe

    local = probe.current()
    if local is not None and not local.wait_ready(30):
        raise pytest.UsageError("the probe in this process could not reach the hub in 30 s")
    result = run.client.start(
        session_id=session.config.getoption("testfleet_session_id"),
        test_type=session.config.getoption("testfleet_test_type"),
        **run.target,
    )
    run.session_id = result.sessions[0].sessionId


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    run = item.config.stash.get(_KEY, None)
    if run is None or run.session_id is None:
        yield
        return
    from testfleet import probe

    local = probe.current()
    if local is not None:
        previous = local.set_test(item.nodeid)
        try:
            yield
        finally:
            local.set_test(previous)
        return
    run.client.name_test(run.session_id, item.nodeid, **run.target)
    yield


def pytest_sessionfinish(session: pytest.Session) -> None:
    run = session.config.stash.get(_KEY, None)
    if run is None or run.session_id is None:
        return
    result = run.client.stop(run.session_id, **run.target)
    info = result.sessions[0]
    run.summary = (
        f"testfleet coverage session {info.sessionId}: {info.totals.covered}/"
        f"{info.totals.total} probes ({info.totals.percent:.1f} %)"
    )
    run.client.client.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    run = terminalreporter.config.stash.get(_KEY, None)
    if run is not None and run.summary:
        terminalreporter.write_line(run.summary)


@pytest.fixture
def testfleet_headers(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Headers that name the running test to a web application's probe middleware."""
    yield {TEST_NAME_HEADERS[0]: request.node.nodeid}
