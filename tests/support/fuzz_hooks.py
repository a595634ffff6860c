"""Schemathesis hooks for the fuzz run (SCHEMATHESIS_HOOKS=tests.support.fuzz_hooks): bodies
for the media types it cannot make by itself. A plan archive is any bytes (mostly not a zip,
sometimes an empty or a real one), so the hub's archive checks are fuzzed too."""

from __future__ import annotations

import io
import zipfile

import schemathesis
from hypothesis import strategies as st


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


_names = st.sampled_from(["manifest.toml", "main.py", "../escape", "/abs", "a/b.txt"])
schemathesis.openapi.media_type(
    "application/zip",
    st.one_of(st.binary(max_size=2048), st.dictionaries(_names, st.binary(max_size=256)).map(_zip)),
)
