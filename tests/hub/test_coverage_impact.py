"""Test impact analysis between two builds: risks (new and modified functions, by body
checksum) and the parent build's tests that touched a modified function; build reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hub.test_coverage_sessions import action, start, stop
from tests.support.fake_probe import FakeProbe, module
from tests.support.inproc import running_hub

pytestmark = pytest.mark.anyio

V1 = [
    module("shop/cart.py", 10, {"Cart.add": (0, 3, "add-1"), "Cart.total": (3, 4, "total-1")}),
    module("shop/pricing.py", 6, {"tax": (0, 3, "tax-1"), "discount": (3, 3, "disc-1")}),
]
# 2.0: Cart.total changed (and moved), discount unchanged but moved, gross is new.
V2 = [
    module("shop/cart.py", 12, {"Cart.add": (0, 3, "add-1"), "Cart.total": (5, 5, "total-2")}),
    module(
        "shop/pricing.py",
        9,
        {"tax": (0, 3, "tax-1"), "gross": (3, 3, "gross-1"), "discount": (6, 3, "disc-1")},
    ),
]


async def test_risks_and_tests_to_run_follow_the_checksums(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        old = FakeProbe(hub.hub, "shop-old", "shop", "1.0", V1)
        await old.connect()
        old.answer()
        await action(hub, start("s1"))
        old.part("s1", {"shop/cart.py": [0, 1]}, test="test_add")
        old.part("s1", {"shop/cart.py": [4], "shop/pricing.py": [0]}, test="test_total")
        old.part("s1", {"shop/pricing.py": [4]}, test="test_discount")
        await old.acked()
        await action(hub, stop("s1"))
        await old.disconnect()

        new = FakeProbe(hub.hub, "shop-new", "shop", "2.0", V2)
        await new.connect()
        new.answer()
        before = (await hub.api.get("/api/v1/coverage/builds/shop/2.0/risks")).json()
        to_run = (await hub.api.get("/api/v1/coverage/builds/shop/2.0/tests-to-run")).json()
        await action(hub, start("s2"))
        new.part("s2", {"shop/pricing.py": [3]}, test="test_gross")
        await new.acked()
        during = (await hub.api.get("/api/v1/coverage/builds/shop/2.0/risks")).json()
        first = (await hub.api.get("/api/v1/coverage/builds/shop/1.0/risks")).json()
        builds = (await hub.api.get("/api/v1/coverage/builds?app=shop")).json()["builds"]
        apps = (await hub.api.get("/api/v1/coverage/apps")).json()["apps"]
        build = (await hub.api.get("/api/v1/coverage/builds/shop/1.0")).json()
        missing = await hub.api.get("/api/v1/coverage/builds/shop/9.9/risks")

    assert before["parent"] == "1.0"
    assert [(r["path"], r["function"], r["kind"], r["tested"]) for r in before["risks"]] == [
        ("shop/cart.py", "Cart.total", "modified", False),
        ("shop/pricing.py", "gross", "new", False),
    ]
    assert [(t["name"], t["functions"]) for t in to_run["tests"]] == [
        ("test_total", ["shop/cart.py:Cart.total"])
    ]
    assert to_run["tests"][0]["testType"] == "AUTO"
    assert [(r["function"], r["covered"], r["tested"]) for r in during["risks"]] == [
        ("Cart.total", 0, False),
        ("gross", 1, True),
    ]
    assert (during["total"], during["tested"]) == (2, 1)
    assert first["parent"] is None and first["risks"] == []
    assert [b["build"] for b in builds] == ["2.0", "1.0"]
    assert [(a["app"], a["builds"], a["latest_build"], a["probes_connected"]) for a in apps] == [
        ("shop", 2, "2.0", 1)
    ]
    assert build["totals"]["covered"] == 5 and build["probes"] == 16
    assert missing.status_code == 404 and missing.json()["code"] == "build_not_found"


async def test_a_named_parent_build_is_the_baseline(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        for version, classes, parent in (("1.0", V1, None), ("1.1", V2, None), ("2.0", V2, "1.0")):
            fake = FakeProbe(hub.hub, f"p-{version}", "shop", version, classes, parent=parent)
            await fake.connect()
            await fake.disconnect()
        patch = (await hub.api.get("/api/v1/coverage/builds/shop/1.1/risks")).json()
        named = (await hub.api.get("/api/v1/coverage/builds/shop/2.0/risks")).json()

    assert patch["parent"] == "1.0" and patch["total"] == 2
    assert named["parent"] == "1.0" and named["total"] == 2


async def test_build_reports_cover_all_sessions_or_the_ones_named(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        fake = FakeProbe(hub.hub, "shop-1", "shop", "1.0", V1)
        await fake.connect()
        fake.answer()
        await action(hub, start("a"))
        fake.part("a", {"shop/cart.py": [0]})
        await fake.acked()
        await action(hub, stop("a"))
        await action(hub, start("b"))
        fake.part("b", {"shop/cart.py": [1]})
        await fake.acked()
        both = (await hub.api.get("/api/v1/coverage/builds/shop/1.0/report")).json()
        only_b = (await hub.api.get("/api/v1/coverage/builds/shop/1.0/report?session=b")).json()
        lcov = (await hub.api.get("/api/v1/coverage/builds/shop/1.0/report?format=lcov")).text
        xml = (await hub.api.get("/api/v1/coverage/builds/shop/1.0/report?format=cobertura")).text
        unknown = await hub.api.get("/api/v1/coverage/builds/shop/1.0/report?session=zzz")
        bad_format = await hub.api.get("/api/v1/coverage/builds/shop/1.0/report?format=html")

    assert both["files"]["shop/cart.py"]["covered_lines"] == [1, 2]
    assert both["sessions"] == ["b", "a"]
    assert only_b["files"]["shop/cart.py"]["covered_lines"] == [2]
    assert "SF:shop/cart.py\nFN:1,Cart.add" in lcov and "DA:1,1\nDA:2,1\nDA:3,0" in lcov
    assert 'lines-covered="2"' in xml and 'filename="shop/cart.py"' in xml
    assert unknown.status_code == 404
    assert bad_format.status_code == 422
