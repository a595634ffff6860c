"""A zip of many stored files, produced while it is sent: nothing is held whole in memory.

The standard library's `zipfile` writes into a sink that is emptied after every block
(a non-seekable sink makes it use data descriptors, so no going back is needed). Text-like
files are deflated (in a worker thread), everything else stored as it is.
"""

from __future__ import annotations

import asyncio
import io
import mimetypes
import zipfile
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime

_TEXT_SUFFIXES = (".xml", ".json", ".txt", ".log", ".html", ".csv", ".yaml", ".yml", ".md")


class _Sink(io.RawIOBase):
    """A write-only, non-seekable file whose bytes are taken out as they come."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._parts.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def compressible(name: str) -> bool:
    """True for files worth deflating (text, XML, JSON ...)."""
    kind, _ = mimetypes.guess_type(name)
    return name.lower().endswith(_TEXT_SUFFIXES) or (kind or "").startswith("text/")


Entry = tuple[str, datetime, Callable[[], AsyncIterator[bytes]]]
"""A file of the zip: its name, its time, and how to read its bytes."""


async def zip_stream(entries: Sequence[Entry]) -> AsyncIterator[bytes]:
    """The zip of `entries`, block by block."""
    sink = _Sink()
    archive = zipfile.ZipFile(sink, mode="w", allowZip64=True)
    for name, when, read in entries:
        info = zipfile.ZipInfo(name, date_time=when.timetuple()[:6])
        if compressible(name):
            info.compress_type = zipfile.ZIP_DEFLATED
            # The fastest level: artifacts are mostly read once. (No public way to set it per
            # member before Python 3.13's `compress_level`.)
            setattr(
                info, "compress_level" if hasattr(info, "compress_level") else "_compresslevel", 1
            )
        else:
            info.compress_type = zipfile.ZIP_STORED
        deflate = info.compress_type == zipfile.ZIP_DEFLATED
        with archive.open(info, mode="w", force_zip64=True) as member:
            async for block in read():
                if deflate:
                    await asyncio.to_thread(member.write, block)
                else:
                    member.write(block)
                data = sink.take()
                if data:
                    yield data
        data = sink.take()
        if data:
            yield data
    archive.close()
    yield sink.take()
