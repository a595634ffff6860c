"""Plan archives (zip): checked in memory before anything is written, hashed by content,
extracted safely, and made from a directory.

A member whose path has `..`, is absolute, holds a backslash or a drive letter, is a link or
any other non-regular file is refused, and so is an archive over the size limits or whose
members compress better than `max_ratio` (a zip bomb).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

SKIPPED_DIRS = frozenset({".git", "__pycache__", ".venv", "venv", ".mypy_cache", ".pytest_cache"})


@dataclass(frozen=True)
class Limits:
    """How large an archive may be, packed and unpacked, and how well it may compress."""

    max_bytes: int = 32 * 1024 * 1024
    max_unpacked: int = 256 * 1024 * 1024
    max_members: int = 10_000
    max_ratio: float = 100.0


class ArchiveError(ValueError):
    """An archive that is refused; `member` names the offending entry when there is one."""

    def __init__(self, message: str, member: str | None = None) -> None:
        super().__init__(f"{member}: {message}" if member else message)
        self.member = member
        self.message = message


@dataclass(frozen=True)
class Member:
    """A regular file of a checked archive."""

    path: str
    size: int


def _check_name(name: str) -> str:
    if "\\" in name:
        raise ArchiveError("backslashes are not allowed in member paths", name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError("absolute paths are not allowed", name)
    parts = PurePosixPath(name).parts
    if any(part == ".." for part in parts):
        raise ArchiveError("'..' is not allowed in member paths", name)
    if "\x00" in name:
        raise ArchiveError("NUL is not allowed in member paths", name)
    return "/".join(p for p in parts if p != ".")


def check_zip(data: bytes, limits: Limits = Limits()) -> list[Member]:
    """The regular files of a zip held in memory; ArchiveError for anything refused."""
    if len(data) > limits.max_bytes:
        raise ArchiveError(f"the archive is {len(data)} bytes; the limit is {limits.max_bytes}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ArchiveError(f"not a zip archive: {error}") from None
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise ArchiveError(f"{len(infos)} members; the limit is {limits.max_members}")
    members: list[Member] = []
    seen: set[str] = set()
    unpacked = 0
    for info in infos:
        path = _check_name(info.filename)
        mode = info.external_attr >> 16
        if info.is_dir():
            continue
        if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
            raise ArchiveError(f"{kind}; only regular files are allowed", info.filename)
        if path in seen:
            raise ArchiveError("the path occurs twice", info.filename)
        seen.add(path)
        if info.file_size > limits.max_ratio * max(info.compress_size, 1) and info.file_size > 4096:
            raise ArchiveError(
                f"compresses {info.file_size / max(info.compress_size, 1):.0f}:1; the bound is "
                f"{limits.max_ratio:g}:1",
                info.filename,
            )
        unpacked += info.file_size
        if unpacked > limits.max_unpacked:
            raise ArchiveError(f"unpacks to more than {limits.max_unpacked} bytes")
        members.append(Member(path, info.file_size))
    return members


def _read_member(archive: zipfile.ZipFile, name: str, size: int) -> bytes:
    """A member's bytes, never more than its header announced."""
    with archive.open(name) as handle:
        content = handle.read(size + 1)
    if len(content) != size:
        raise ArchiveError("its size differs from the one its header announces", name)
    return content


def content_hash(data: bytes, limits: Limits = Limits()) -> str:
    """A hash of what the archive holds (paths and bytes), not of how it was zipped."""
    members = check_zip(data, limits)
    digest = hashlib.sha256()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = {_check_name(i.filename): i.filename for i in archive.infolist() if not i.is_dir()}
        for member in sorted(members, key=lambda m: m.path):
            content = _read_member(archive, names[member.path], member.size)
            digest.update(member.path.encode() + b"\x00")
            digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()


def read_text(data: bytes, path: str, limit: int = 1_000_000) -> str | None:
    """The text of member `path` of a checked archive, or None if there is no such file."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            if not info.is_dir() and _check_name(info.filename) == path:
                if info.file_size > limit:
                    raise ArchiveError(f"larger than {limit} bytes", path)
                raw = _read_member(archive, info.filename, info.file_size)
                try:
                    return raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise ArchiveError("not UTF-8 text", path) from None
    return None


def extract(data: bytes, target: Path, limits: Limits = Limits()) -> None:
    """Check, then write the archive's regular files under `target` (which must not exist)."""
    members = {m.path: m for m in check_zip(data, limits)}
    target.mkdir(parents=True)
    root = target.resolve()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            path = _check_name(info.filename)
            destination = (root / path).resolve()
            if root not in destination.parents:
                raise ArchiveError("would be written outside the target", info.filename)
            destination.parent.mkdir(parents=True, exist_ok=True)
            content = _read_member(archive, info.filename, members[path].size)
            fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)


def zip_directory(source: Path, limits: Limits = Limits()) -> bytes:
    """A zip of the regular files under `source` (links and tool directories left out)."""
    buffer = io.BytesIO()
    total = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for directory, subdirs, files in os.walk(source):
            subdirs[:] = sorted(d for d in subdirs if d not in SKIPPED_DIRS)
            for name in sorted(files):
                path = Path(directory) / name
                if path.is_symlink() or not path.is_file() or name.endswith((".pyc", ".pyo")):
                    continue
                total += path.stat().st_size
                if total > limits.max_unpacked:
                    raise ArchiveError(f"{source} holds more than {limits.max_unpacked} bytes")
                archive.write(path, path.relative_to(source).as_posix())
    data = buffer.getvalue()
    if len(data) > limits.max_bytes:
        raise ArchiveError(
            f"the archive of {source} is {len(data)} bytes; limit {limits.max_bytes}"
        )
    return data
