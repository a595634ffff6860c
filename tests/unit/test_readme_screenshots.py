"""The README's screenshots exist and are the ones the browser tests make (so they are made
again by `make screenshots`, never drawn by hand)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_screenshot_in_the_readme_is_made_by_a_browser_test() -> None:
    shown = set(re.findall(r"docs/screenshots/([\w-]+)\.png", (ROOT / "README.md").read_text()))
    made = {
        name
        for path in (ROOT / "tests" / "browser").glob("test_*.py")
        for name in re.findall(r"""screenshot\(\w+, "([\w-]+)"\)""", path.read_text())
    }
    assert shown, "the README shows no screenshot"
    assert shown <= made, f"not made by a browser test: {sorted(shown - made)}"
    for name in shown:
        assert (ROOT / "docs" / "screenshots" / f"{name}.png").is_file(), name
