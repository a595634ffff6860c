"""Reading descriptor files: JSON, YAML, stdin, and clear errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from testfleet.cli.files import DescriptorFileError, parse_descriptor, read_descriptor

YAML_TEXT = """\
name: smoke
tests:
  - name: hello
    steps:
      - {name: say, plugin: echo, params: {text: hi}}
"""


def test_json_file(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text('{"name": "smoke", "tests": []}')
    loaded = read_descriptor(str(path))
    assert (loaded.format, loaded.data["name"], loaded.source) == ("json", "smoke", str(path))
    assert loaded.text == path.read_text()


def test_yaml_file_whatever_its_extension(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text(YAML_TEXT)
    loaded = read_descriptor(str(path))
    assert loaded.format == "yaml"
    assert loaded.data["tests"][0]["steps"][0]["params"] == {"text": "hi"}


def test_stdin() -> None:
    loaded = read_descriptor("-", stdin=io.StringIO(YAML_TEXT))
    assert (loaded.source, loaded.data["name"]) == ("<stdin>", "smoke")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("   \n", "is empty"),
        ('{"name": "x",\n "tests": [}', r"not valid JSON: .*\(line 2, column 12\)"),
        ("name: x\n  tests: [\n", r"not valid YAML: .*\(line 2, column 8\)"),
        ("- a\n- b\n", "must hold a mapping .* not a list"),
        ("just words", r"not a single value \(str\)"),
        ("~", "not nothing"),
    ],
)
def test_bad_texts_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(DescriptorFileError, match=message) as caught:
        parse_descriptor(text, "job.yaml")
    assert str(caught.value).startswith("job.yaml")


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DescriptorFileError, match="no such file"):
        read_descriptor(str(tmp_path / "nope.yaml"))


def test_a_directory(tmp_path: Path) -> None:
    with pytest.raises(DescriptorFileError, match="is a directory"):
        read_descriptor(str(tmp_path))


def test_a_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(DescriptorFileError, match="not UTF-8"):
        read_descriptor(str(path))
