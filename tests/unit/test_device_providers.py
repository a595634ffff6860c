"""Device providers: option parsing, the static file with its errors, adb's listing (a fake
`adb` on PATH, since no phone is here), and what a step's environment gets."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest

from testfleet.agent.devices import Inventory, ProviderError, make_provider
from testfleet.agent.devices.android import parse_adb
from testfleet.agent.devices.static import load
from testfleet.agent.outbox import Outbox
from testfleet.protocol.wire import DeviceSpec

pytestmark = pytest.mark.anyio

ADB_OUTPUT = """List of devices attached
emulator-5554    device product:sdk_gphone64 model:sdk_gphone64 device:emu64x transport_id:1
R58M123ABC             device usb:1-1 product:a51 model:SM_A515F device:a51 transport_id:2
0123456789             unauthorized usb:1-2 transport_id:3
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def fake_adb(tmp_path: Path, listing: str) -> Path:
    """An `adb` that prints the contents of `listing.txt` for `adb devices -l`."""
    (tmp_path / "listing.txt").write_text(listing)
    script = tmp_path / "adb"
    script.write_text(
        f'#!/bin/sh\n[ "$1 $2" = "devices -l" ] || exit 2\ncat "{tmp_path}/listing.txt"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_adb_listing_keeps_ready_devices_with_their_properties() -> None:
    found = parse_adb(ADB_OUTPUT)
    assert sorted(found) == ["R58M123ABC", "emulator-5554"]
    assert found["R58M123ABC"]["model"] == "SM_A515F"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("firefox", "unknown provider 'firefox'"),
        ("chromium:count=0", "count='0' must be a positive integer"),
        ("chromium:colour=red", "unknown option 'colour'"),
        ("chromium:count", "'count' is not KEY=VALUE"),
        ("static", "needs the file's path"),
        ("android:appium=ftp://x", "must be a URL"),
        ("android:interval=-1,adb=/bin/true", "interval='-1' must be a positive number"),
    ],
)
def test_bad_provider_options_are_refused_with_the_reason(spec: str, message: str) -> None:
    with pytest.raises(ProviderError, match=message.replace("(", r"\(")):
        make_provider(spec)


def test_android_needs_adb(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ProviderError, match="adb is not installed"):
        make_provider("android")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- name: a\n  url: http://x\n  colour: red\n", r"/0/colour: Extra inputs"),
        ("- name: a\n", r"/0/url: Field required"),
        ("- {name: a, url: 'ftp://x'}\n", r"/0/url: String should match"),
        ("devices: {a: 1}\n", r"/devices: must be a list"),
        (
            "- {name: a, url: 'http://x'}\n- {name: a, url: 'http://y'}\n",
            "/1/name: 'a' is used twice",
        ),
        ("- [unclosed\n", "not valid YAML"),
    ],
)
def test_a_bad_static_file_names_where(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "devices.yaml"
    path.write_text(content)
    with pytest.raises(ProviderError, match=message):
        load(path)


def test_static_devices_from_json(tmp_path: Path) -> None:
    path = tmp_path / "devices.json"
    entry = {
        "name": "appium-1",
        "url": "http://127.0.0.1:4723/",
        "capabilities": {"browserName": "chrome", "appium:automationName": "Chromium"},
        "labels": {"pool": "a"},
        "session_capabilities": {"appium:executable": "/usr/bin/chromedriver"},
    }
    path.write_text(json.dumps({"devices": [entry]}))
    (device,) = load(path)
    assert device.url == "http://127.0.0.1:4723"
    assert device.kind == "webdriver" and device.labels == {"pool": "a"}


async def test_android_devices_come_and_go_as_adb_sees_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adb = fake_adb(tmp_path, ADB_OUTPUT)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    outbox = Outbox()
    provider = make_provider("android:appium=http://127.0.0.1:4723,interval=0.05")
    inventory = Inventory(outbox, [], [provider])
    await inventory.start()
    try:
        first = {d.name: d for d in inventory.current()}
        (tmp_path / "listing.txt").write_text(
            "List of devices attached\nemulator-5554 device model:sdk\nNEW1 device model:Pixel_7\n"
        )
        for _ in range(200):
            if "NEW1" in {d.name for d in inventory.current()}:
                break
            await asyncio.sleep(0.02)
        after = {d.name for d in inventory.current()}
        sent = [json.loads(e.text) for e in outbox.after(0)]
    finally:
        await inventory.close()
    assert adb.exists()
    assert sorted(first) == ["R58M123ABC", "emulator-5554"]
    phone = first["R58M123ABC"]
    assert phone.capabilities["appium:udid"] == "R58M123ABC"
    assert phone.capabilities["platformName"] == "Android"
    assert phone.url == "http://127.0.0.1:4723"
    assert after == {"emulator-5554", "NEW1"}
    kinds = [(m["type"], m.get("name") or m.get("device", {}).get("name")) for m in sent]
    assert ("DEVICE_REMOVED", "R58M123ABC") in kinds
    assert ("DEVICE_ADDED", "NEW1") in kinds


def test_a_steps_environment_names_the_device_url_and_capabilities() -> None:
    device = DeviceSpec(
        name="b",
        kind="browser",
        capabilities={"browserName": "chrome"},
        url="http://127.0.0.1:9515",
        session_capabilities={"goog:chromeOptions": {"binary": "/usr/bin/chromium"}},
    )
    inventory = Inventory(Outbox(), [device, DeviceSpec(name="slot-0")], [])
    env = inventory.environment("b")
    assert env["TESTFLEET_WEBDRIVER_URL"] == "http://127.0.0.1:9515"
    assert json.loads(env["TESTFLEET_DEVICE_CAPS"]) == {
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": "/usr/bin/chromium"},
    }
    assert "TESTFLEET_WEBDRIVER_URL" not in inventory.environment("slot-0")
    assert inventory.environment("unknown") == {}
