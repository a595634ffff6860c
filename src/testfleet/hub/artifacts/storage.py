"""Where artifact bytes live, behind a small interface (a directory today; an S3-compatible
bucket can implement the same methods later).

An upload is written to a part that only becomes readable by `commit`, so a file cut off in
the middle (an agent killed mid-upload) is never served. Blocks of `BLOCK` bytes are hashed
and written in worker threads while the next block arrives: memory stays flat (two blocks)
whatever the file's size.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import shutil
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any, Protocol

BLOCK = 1024 * 1024


class StorageBusy(Exception):
    """Another request is writing this upload right now."""


class OffsetMismatch(Exception):
    """The upload does not stand where the request says it continues from."""

    def __init__(self, received: int) -> None:
        super().__init__(f"the upload has {received} bytes")
        self.received = received


class TooLong(Exception):
    """More bytes came than the upload announced."""


class ArtifactStorage(Protocol):
    """What the hub needs of an artifact store."""

    async def received(self, key: str) -> int:
        """Bytes of the unfinished upload `key` so far (0 if none)."""
        ...

    async def receive(
        self, key: str, offset: int, chunks: AsyncIterable[bytes], size: int, hasher: Any
    ) -> int:
        """Append `chunks` to upload `key`, which must hold `offset` bytes, feeding `hasher`;
        never past `size` bytes (TooLong). What arrived is kept even if the stream breaks.
        Returns the bytes held now."""
        ...

    async def digest(self, key: str, length: int) -> Any:
        """A sha256 object fed with the first `length` bytes of upload `key`."""
        ...

    async def commit(self, key: str) -> None:
        """The upload is whole and checked: make it readable."""
        ...

    async def discard(self, key: str) -> None:
        """Drop an unfinished upload."""
        ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes [start, end) of a committed file, in blocks."""
        ...

    async def exists(self, key: str) -> bool:
        """True if a committed file is there."""
        ...

    async def delete_job(self, job_id: int) -> None:
        """Remove every file and upload of a job."""
        ...


class DirectoryStorage:
    """Artifacts in a directory: `files/JOB/ID` once committed, `uploads/JOB/ID` before."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files = root / "files"
        self._uploads = root / "uploads"

    def _file(self, key: str) -> Path:
        return self._files / key

    def _part(self, key: str) -> Path:
        return self._uploads / key

    async def received(self, key: str) -> int:
        try:
            return (await asyncio.to_thread(self._part(key).stat)).st_size
        except FileNotFoundError:
            return 0

    async def receive(
        self, key: str, offset: int, chunks: AsyncIterable[bytes], size: int, hasher: Any
    ) -> int:
        fd = await asyncio.to_thread(self._open_part, key, offset)
        held = offset
        writing: asyncio.Future[None] | None = None  # the previous block, while the next comes
        try:
            block: list[bytes] = []
            pending = 0
            try:
                async for chunk in chunks:
                    if held + pending + len(chunk) > size:
                        raise TooLong
                    block.append(chunk)
                    pending += len(chunk)
                    if pending >= BLOCK:
                        if writing is not None:
                            await writing
                        writing = asyncio.ensure_future(_append(fd, block, hasher))
                        held += pending
                        block, pending = [], 0
            finally:
                if writing is not None:
                    await writing
                if block:  # what arrived before the stream broke is kept: it resumes from here
                    await _append(fd, block, hasher)
                    held += pending
        finally:
            await asyncio.to_thread(os.close, fd)
        return held

    def _open_part(self, key: str, offset: int) -> int:
        path = self._part(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StorageBusy from None
        held = os.fstat(fd).st_size
        if held != offset:
            os.close(fd)
            raise OffsetMismatch(held)
        os.lseek(fd, offset, os.SEEK_SET)
        return fd

    async def digest(self, key: str, length: int) -> Any:
        return await asyncio.to_thread(_sha256_of, self._part(key), length)

    async def commit(self, key: str) -> None:
        await asyncio.to_thread(self._commit, key)

    def _commit(self, key: str) -> None:
        part, final = self._part(key), self._file(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        with part.open("rb") as file:
            os.fsync(file.fileno())
        os.replace(part, final)

    async def discard(self, key: str) -> None:
        await asyncio.to_thread(self._part(key).unlink, missing_ok=True)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        file = await asyncio.to_thread(self._file(key).open, "rb")
        try:
            await asyncio.to_thread(file.seek, start)
            left = None if end is None else max(0, end - start)
            while left is None or left > 0:
                want = BLOCK if left is None else min(BLOCK, left)
                data = await asyncio.to_thread(file.read, want)
                if not data:
                    return
                if left is not None:
                    left -= len(data)
                yield data
        finally:
            await asyncio.to_thread(file.close)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._file(key).is_file)

    async def delete_job(self, job_id: int) -> None:
        for base in (self._files, self._uploads):
            await asyncio.to_thread(shutil.rmtree, base / str(job_id), True)


async def _append(fd: int, block: list[bytes], hasher: Any) -> None:
    """Hash and write a block side by side in two worker threads (both release the GIL)."""
    data = b"".join(block) if len(block) > 1 else block[0]
    await asyncio.gather(
        asyncio.to_thread(hasher.update, data), asyncio.to_thread(_write, fd, data)
    )


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _sha256_of(path: Path, length: int) -> Any:
    hasher = hashlib.sha256()
    left = length
    try:
        with path.open("rb") as file:
            while left > 0:
                data = file.read(min(BLOCK, left))
                if not data:
                    break
                hasher.update(data)
                left -= len(data)
    except FileNotFoundError:
        pass
    return hasher
