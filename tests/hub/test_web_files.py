"""The web UI's files and the API docs, served by the hub itself (nothing from elsewhere)."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

import pytest

from testfleet.hub.routes.ui import ui_files
from testfleet.ui import STATIC
from tests.support.inproc import running_hub

pytestmark = pytest.mark.anyio
VENDOR = STATIC.parent / "vendor.json"


async def test_the_root_leads_to_the_ui_and_every_ui_path_is_the_page(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        root = await hub.api.get("/")
        pages = [await hub.api.get(path) for path in ("/ui/", "/ui/jobs/12", "/ui/no/such")]
    assert (root.status_code, root.headers["location"]) == (307, "/ui/")
    for page in pages:
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-cache"
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert f"/ui/static/{ui_files().version}/js/main.js" in page.text


async def test_assets_are_compressed_cached_and_revalidated(tmp_path: Path) -> None:
    files = ui_files()
    url = f"/ui/static/{files.version}/js/main.js"
    async with running_hub(tmp_path) as hub:
        packed = await hub.api.get(url, headers={"Accept-Encoding": "gzip"})
        plain = await hub.api.get(url, headers={"Accept-Encoding": "identity"})
        again = await hub.api.get(url, headers={"If-None-Match": packed.headers["etag"]})
        old = await hub.api.get("/ui/static/0ld/js/main.js")
        missing = await hub.api.get(f"/ui/static/{files.version}/js/nothing.js")
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["content-type"].startswith("text/javascript")
    assert "immutable" in packed.headers["cache-control"]
    assert plain.content == (STATIC / "js" / "main.js").read_bytes()
    assert "content-encoding" not in plain.headers
    assert again.status_code == 304
    assert old.status_code == 200 and old.headers["cache-control"] == "no-cache"
    assert missing.status_code == 404


def test_every_module_the_ui_imports_is_in_the_package() -> None:
    """Relative imports only, each to a file that exists: nothing comes from another host."""
    for path in [*STATIC.rglob("*.js"), *STATIC.rglob("*.mjs")]:
        for target in re.findall(r"""(?:from|import)\s*\(?\s*["']([^"']+)["']""", path.read_text()):
            assert target.startswith("."), f"{path.name} imports {target!r}"
            assert (path.parent / target).resolve().is_file(), f"{path.name}: {target} is missing"
    for path in STATIC.rglob("*"):  # our own files name no other host (vendor: namespaces)
        if path.suffix in (".js", ".css", ".html"):
            assert not re.search(r"""["'(]https?://""", path.read_text()), path.name


def test_the_vendored_modules_are_the_pinned_ones() -> None:
    manifest = json.loads(VENDOR.read_text())
    vendored = {p.name for p in (STATIC / "vendor").iterdir()}
    assert vendored == {entry["dest"] for entry in manifest["files"]}
    for entry in manifest["files"]:
        body = (STATIC / "vendor" / entry["dest"]).read_bytes()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"], entry["dest"]


def test_the_ui_weighs_less_than_300_kb_compressed() -> None:
    files = ui_files()
    assert files.compressed_size() < 300_000
    for name, asset in files.assets.items():
        if asset.gzipped is not None:
            assert gzip.decompress(asset.gzipped) == asset.body, name


async def test_the_api_docs_load_only_the_hubs_own_files(tmp_path: Path) -> None:
    async with running_hub(tmp_path) as hub:
        pages = {path: await hub.api.get(path) for path in ("/docs",)}
        redoc = await hub.api.get("/redoc")
        used = {
            src
            for page in pages.values()
            for src in re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        }
        fetched = {src: await hub.api.get(src) for src in used}
    assert all(page.status_code == 200 for page in pages.values())
    assert used and all(src.startswith("/") for src in used), used
    assert all(answer.status_code == 200 for answer in fetched.values())
    assert "cdn." not in pages["/docs"].text
    assert redoc.status_code == 404  # ReDoc would load its logo from its vendor's site
