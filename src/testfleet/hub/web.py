"""The web UI's files, served from memory: gzip-compressed once, cached by the browser for
good under a versioned prefix (`/ui/static/<version>/`), the page itself never cached."""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from testfleet.ui import INDEX, STATIC

_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}
_COMPRESSIBLE = (".js", ".mjs", ".css", ".html", ".svg", ".json")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'self'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


ENTRY = "js/main.js"
_STATIC_IMPORT = re.compile(
    r"""(?:^|[;}\s])(?:import|export)\b[^;"'()]*?["'](\.{1,2}/[^"']+)["']"""
)


def import_graph(files: dict[str, bytes]) -> dict[str, list[str]]:
    """Each module's static imports (paths below `static/`); `import()` is not followed."""
    graph: dict[str, list[str]] = {}
    for name, body in files.items():
        if name.endswith((".js", ".mjs")):
            folder = posixpath.dirname(name)
            found = _STATIC_IMPORT.findall(body.decode())
            graph[name] = sorted({posixpath.normpath(posixpath.join(folder, t)) for t in found})
    return graph


def imported_by(graph: dict[str, list[str]], entry: str) -> set[str]:
    """`entry` and every module it imports, directly or not."""
    seen: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph.get(name, []))
    return seen


@dataclass(frozen=True)
class Asset:
    """One file, as sent: its bytes, their gzip form (if smaller), type and tag."""

    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str


def _asset(body: bytes, suffix: str) -> Asset:
    packed = gzip.compress(body, compresslevel=9, mtime=0) if suffix in _COMPRESSIBLE else None
    media_type = _TYPES.get(suffix) or mimetypes.guess_type(f"x{suffix}")[0] or "text/plain"
    return Asset(
        body=body,
        gzipped=packed if packed is not None and len(packed) < len(body) else None,
        media_type=media_type,
        etag='"' + hashlib.sha256(body).hexdigest()[:20] + '"',
    )


class UiFiles:
    """Every file of the UI, read once."""

    def __init__(self, root: Path = STATIC) -> None:
        files = {
            path.relative_to(root).as_posix(): path.read_bytes()
            for path in sorted(root.rglob("*"))
            if path.is_file() and path.name != INDEX and not path.name.startswith(".")
        }
        digest = hashlib.sha256()
        for name, body in files.items():
            digest.update(name.encode() + b"\0" + body + b"\0")
        self.version = digest.hexdigest()[:12]
        self.base = f"/ui/static/{self.version}/"
        self.assets = {name: _asset(body, Path(name).suffix) for name, body in files.items()}
        self.graph = import_graph(files)
        preload = "\n".join(
            f'<link rel="modulepreload" href="{self.base}{name}">'
            for name in sorted(imported_by(self.graph, ENTRY))
        )
        data = json.dumps(self.graph, separators=(",", ":")).replace("</", "<\\/")
        page = (root / INDEX).read_text().replace("{{preload}}", preload)
        page = page.replace(
            "{{graph}}", f'<script type="application/json" id="module-graph">{data}</script>'
        )
        page = page.replace("{{base}}", self.base)
        self.index = _asset(page.encode(), ".html")

    def asset(self, name: str) -> Asset | None:
        """The file at `name` (a path below `static/`), or None."""
        return self.assets.get(name)

    def compressed_size(self) -> int:
        """The bytes a browser downloads for every file of the UI (gzip where smaller)."""
        every = [*self.assets.values(), self.index]
        return sum(len(a.gzipped if a.gzipped is not None else a.body) for a in every)
