"""The web UI: browser modules and styles served by the hub at `/ui/`, no build step.

Everything the browser loads is in `static/`, exactly as served (third-party modules in
`static/vendor/`, pinned in `vendor.json`). The UI talks to the hub only over its public
HTTP API and the live channel, like any other client. See docs/ui.md.
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"
"""The files the hub serves under `/ui/static/<version>/`."""
INDEX = "index.html"
"""The page every UI path answers with; `{{base}}` in it is the assets' versioned prefix and
`{{preload}}` becomes a `modulepreload` link for every module that `js/main.js` imports, so
that the browser fetches them all at once instead of import after import; `{{graph}}` the
static imports of every module (JSON), with which the UI preloads a page's modules."""
