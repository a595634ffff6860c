"""Plan archives: refused before anything is written when a member escapes, links, or the
archive is too large or compresses too well; accepted ones hash by content."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from testfleet.steps.plan.archive import (
    ArchiveError,
    Limits,
    check_zip,
    content_hash,
    extract,
    zip_directory,
)


def make_zip(
    members: dict[str, bytes], *, link: str | None = None, when=(2020, 1, 1, 0, 0, 0)
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, when)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
        if link is not None:
            info = zipfile.ZipInfo(link, when)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


PLAN = {"manifest.toml": b'name = "p"\n', "main.py": b"print(1)\n"}


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../evil.py", "'..'"),
        ("sub/../../evil.py", "'..'"),
        ("/etc/evil.py", "absolute"),
        ("C:/evil.py", "absolute"),
        ("sub\\evil.py", "backslash"),
    ],
)
def test_escaping_paths_are_refused_naming_the_member(
    name: str, problem: str, tmp_path: Path
) -> None:
    data = make_zip({**PLAN, name: b"x"})
    with pytest.raises(ArchiveError) as refused:
        check_zip(data)
    assert refused.value.member == name and problem in refused.value.message
    with pytest.raises(ArchiveError):
        extract(data, tmp_path / "target")
    assert not (tmp_path / "target").exists() and not (tmp_path / "evil.py").exists()


def test_links_are_refused(tmp_path: Path) -> None:
    data = make_zip(PLAN, link="passwd")
    with pytest.raises(ArchiveError, match="symbolic link"):
        check_zip(data)
    with pytest.raises(ArchiveError):
        extract(data, tmp_path / "target")
    assert not (tmp_path / "target").exists()


def test_size_limits_and_compression_ratio() -> None:
    data = make_zip({**PLAN, "big.bin": b"\0" * 2_000_000})
    with pytest.raises(ArchiveError, match="compresses"):
        check_zip(data)
    with pytest.raises(ArchiveError, match="limit"):
        check_zip(make_zip(PLAN), Limits(max_bytes=100))
    with pytest.raises(ArchiveError, match="unpacks to more"):
        check_zip(make_zip({**PLAN, "a.txt": bytes(range(256)) * 40}), Limits(max_unpacked=5000))
    with pytest.raises(ArchiveError, match="members"):
        check_zip(make_zip(PLAN), Limits(max_members=1))
    with pytest.raises(ArchiveError, match="not a zip"):
        check_zip(b"PK\x03\x04 truncated")


def test_duplicate_members_are_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.py", "1")
        with pytest.warns(UserWarning):
            archive.writestr("a.py", "2")
    with pytest.raises(ArchiveError, match="twice"):
        check_zip(buffer.getvalue())


def test_content_hash_ignores_timestamps_but_not_content() -> None:
    first = content_hash(make_zip(PLAN, when=(2020, 1, 1, 0, 0, 0)))
    assert first == content_hash(make_zip(PLAN, when=(2024, 5, 6, 7, 8, 10)))
    assert first != content_hash(make_zip({**PLAN, "main.py": b"print(2)\n"}))


def test_extract_and_zip_directory_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "plan"
    (source / "pkg").mkdir(parents=True)
    (source / "manifest.toml").write_text('name = "p"\n')
    (source / "pkg" / "mod.py").write_text("X = 1\n")
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "junk.pyc").write_bytes(b"\0")
    (source / "link.py").symlink_to(source / "manifest.toml")
    data = zip_directory(source)
    names = {m.path for m in check_zip(data)}
    assert names == {"manifest.toml", "pkg/mod.py"}
    extract(data, tmp_path / "copy")
    assert (tmp_path / "copy" / "pkg" / "mod.py").read_text() == "X = 1\n"
