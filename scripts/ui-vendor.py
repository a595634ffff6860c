#!/usr/bin/env python3
"""Fetch the web UI's third-party modules again, as pinned in src/testfleet/ui/vendor.json.

Each package comes from the npm registry through `npm pack`; its tarball must have the
recorded integrity. The chosen file is copied to src/testfleet/ui/static/vendor/, with its
bare imports (such as "preact") pointed at the sibling file and its source-map comment
dropped, and its sha256 recorded. Run
it again after changing a version (and its integrity) in vendor.json: `make ui-vendor`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UI = ROOT / "src" / "testfleet" / "ui"
MANIFEST = UI / "vendor.json"
VENDOR = UI / "static" / "vendor"


def pack(package: str, version: str, into: Path) -> Path:
    """The package's tarball from the registry (npm checks it against the registry's hash)."""
    out = subprocess.run(
        ["npm", "pack", f"{package}@{version}", "--json", "--silent"],
        cwd=into,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return into / json.loads(out)[0]["filename"]


def integrity(path: Path) -> str:
    """The npm integrity string (sha512, base64) of a file."""
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def main() -> int:
    manifest = json.loads(MANIFEST.read_text())
    VENDOR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tarballs: dict[tuple[str, str], Path] = {}
        for entry in manifest["files"]:
            key = (entry["package"], entry["version"])
            if key not in tarballs:
                tarballs[key] = pack(*key, work)
            tarball = tarballs[key]
            if integrity(tarball) != entry["integrity"]:
                print(f"{tarball.name}: integrity differs from vendor.json", file=sys.stderr)
                return 1
            with tarfile.open(tarball) as archive:
                member = archive.extractfile(f"package/{entry['source']}")
                assert member is not None, entry["source"]
                text = member.read().decode()
            # No source maps are shipped: drop the comment that would ask for one.
            text = re.sub(r"\n//# sourceMappingURL=\S+\n?$", "\n", text)
            for bare, local in entry["imports"].items():
                text = text.replace(f'from"{bare}"', f'from"{local}"')
                text = text.replace(f'from "{bare}"', f'from "{local}"')
            dest = VENDOR / entry["dest"]
            dest.write_text(text)
            entry["sha256"] = hashlib.sha256(text.encode()).hexdigest()
            print(f"{entry['package']}@{entry['version']} {entry['source']} -> {dest.name}")
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
