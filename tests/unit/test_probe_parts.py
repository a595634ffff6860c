"""The probe's small parts: its settings from the environment, the outbox, the middleware."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from testfleet import probe
from testfleet.probe.config import ProbeConfig, ProbeConfigError
from testfleet.probe.environ import BOOTSTRAP_DIR, probe_environment
from testfleet.probe.middleware import AsgiTestNameMiddleware, TestNameMiddleware
from testfleet.probe.outbox import ProbeOutbox
from testfleet.protocol.coverage import CoverDataPart, SessionFinished


def test_the_environment_form_round_trips_and_reaches_pythonpath(tmp_path: Path) -> None:
    config = ProbeConfig(
        hub_url="http://127.0.0.1:9",
        app="shop",
        build="2.0",
        parent_build="1.0",
        token="tok",
        sources=(tmp_path,),
        base=tmp_path,
        agent_id="web",
    )
    env = probe_environment(config, {"PYTHONPATH": "/x"})

    assert env["PYTHONPATH"].split(":") == [str(BOOTSTRAP_DIR), "/x"]
    assert (BOOTSTRAP_DIR / "sitecustomize.py").is_file()
    assert ProbeConfig.from_env(env) == config
    assert ProbeConfig.from_env({}) is None
    assert config.websocket_url == "ws://127.0.0.1:9/api/v1/coverage/probes/connect"


def test_an_incomplete_environment_names_what_is_missing() -> None:
    with pytest.raises(ProbeConfigError, match="TESTFLEET_PROBE_BUILD"):
        ProbeConfig.from_env({"TESTFLEET_PROBE_HUB": "http://h:1", "TESTFLEET_PROBE_APP": "a"})
    with pytest.raises(ProbeConfigError, match="http://host:port"):
        ProbeConfig(hub_url="ftp://h", app="a", build="1")


def test_the_outbox_numbers_keeps_until_ack_and_drops_cancelled_parts() -> None:
    async def scenario() -> tuple[list[int], list[int], bool]:
        box = ProbeOutbox()
        box.add(CoverDataPart(sessionId="a", data=[]))
        box.add(CoverDataPart(sessionId="b", data=[]))
        box.add(SessionFinished(sessionId="a", ts=1))
        box.ack(1)
        kept = [seq for seq, _ in box.after(0)]
        box.discard_session("b")
        left = [seq for seq, _ in box.after(0)]
        box.drop(3)
        return kept, left, box.emptied.is_set()

    kept, left, emptied = asyncio.run(scenario())
    assert (kept, left, emptied) == ([2, 3], [3], True)


class FakeProbe:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.current = ""

    def set_test(self, name: str) -> str:
        previous, self.current = self.current, name
        self.names.append(name)
        return previous


def test_wsgi_middleware_names_the_test_while_the_response_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeProbe()
    monkeypatch.setattr(probe, "_current", fake)
    seen: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(fake.current)
        return [b"ok"]

    wrapped = TestNameMiddleware(app)  # type: ignore[arg-type]
    body = wrapped({"HTTP_X_TEST_NAME": "test_a"}, lambda *a: None)
    assert list(body) == [b"ok"] and fake.current == "test_a"
    body.close()  # type: ignore[attr-defined]
    plain = wrapped({}, lambda *a: None)

    assert seen == ["test_a", ""] and fake.current == "" and plain == [b"ok"]


def test_asgi_middleware_names_the_test_for_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeProbe()
    monkeypatch.setattr(probe, "_current", fake)
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(fake.current)

    wrapped = AsgiTestNameMiddleware(app)
    scope = {"type": "http", "headers": [(b"drill-test-name", b"test_b")]}
    asyncio.run(wrapped(scope, None, None))  # type: ignore[arg-type]
    asyncio.run(wrapped({"type": "lifespan"}, None, None))  # type: ignore[arg-type]

    assert seen == ["test_b", ""] and fake.current == ""


def test_without_a_probe_the_middleware_passes_requests_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(probe, "_current", None)
    wrapped = TestNameMiddleware(lambda environ, start: [b"x"])
    assert wrapped({"HTTP_DRILL_TEST_NAME": "t"}, lambda *a: None) == [b"x"]
