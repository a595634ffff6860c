"""JUnit XML reading: Ant/Maven's and pytest's flavours, nested suites, hostile and broken XML."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testfleet.hub.reports.junit import ReportError, looks_like_junit, parse_junit

MAVEN = b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="com.acme.LoginTest" tests="4">
    <testcase classname="com.acme.LoginTest" name="accepts" time="0.012"/>
    <testcase classname="com.acme.LoginTest" name="refuses" time="1,234.5">
      <failure message="expected 401" type="AssertionError">at LoginTest.java:42</failure>
    </testcase>
    <testcase classname="com.acme.LoginTest" name="boom"><error message="NPE"/></testcase>
    <testcase classname="com.acme.LoginTest" name="later"><skipped/></testcase>
    <testsuite name="inner"><testcase classname="x" name="nested" time="nan"/></testsuite>
  </testsuite>
</testsuites>
"""


def test_maven_style_reports_give_every_case_with_its_outcome() -> None:
    cases = parse_junit(MAVEN)
    assert [(c.name, c.outcome) for c in cases] == [
        ("accepts", "passed"),
        ("refuses", "failed"),
        ("boom", "error"),
        ("later", "skipped"),
        ("nested", "passed"),
    ]
    refuses = cases[1]
    assert (refuses.suite, refuses.classname, refuses.duration) == (
        "com.acme.LoginTest",
        "com.acme.LoginTest",
        1234.5,
    )
    assert refuses.message == "expected 401" and refuses.detail == "at LoginTest.java:42"
    assert cases[4].suite == "inner" and cases[4].duration is None


def test_pytest_s_own_junit_xml_is_read(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n"
        "def test_ok(): pass\n"
        "def test_bad(): assert 1 == 2, 'one is not two'\n"
        "@pytest.mark.skip(reason='not today')\n"
        "def test_skip(): pass\n"
        "@pytest.fixture\n"
        "def broken(): raise RuntimeError('fixture exploded')\n"
        "def test_error(broken): pass\n"
    )
    report = tmp_path / "junit.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            "-o",
            "filterwarnings=",
            str(tmp_path / "test_sample.py"),
        ],
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
    )
    data = report.read_bytes()
    assert looks_like_junit("junit.xml", data)
    outcomes = {c.name: c for c in parse_junit(data)}
    assert {name: c.outcome for name, c in outcomes.items()} == {
        "test_ok": "passed",
        "test_bad": "failed",
        "test_skip": "skipped",
        "test_error": "error",
    }
    assert outcomes["test_bad"].classname == "test_sample"
    assert "one is not two" in (outcomes["test_bad"].message or "")
    assert "fixture exploded" in (outcomes["test_error"].detail or "")


def test_an_entity_expansion_bomb_is_refused_safely() -> None:
    bomb = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<testsuite name="&lol3;"><testcase name="x"/></testsuite>"""
    with pytest.raises(ReportError, match="declares XML entities"):
        parse_junit(bomb)


def test_an_external_entity_is_refused() -> None:
    xxe = b"""<?xml version="1.0"?>
<!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]><testsuite name="&x;"/>"""
    with pytest.raises(ReportError, match="refused"):
        parse_junit(xxe)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"<testsuite><testcase name='a'></testsuite>", "not well-formed XML at line 1, column"),
        (b"<project><dependency/></project>", "root element is <project>"),
        (b"", "not well-formed"),
    ],
)
def test_broken_or_foreign_xml_says_what_is_wrong(data: bytes, problem: str) -> None:
    with pytest.raises(ReportError, match=problem):
        parse_junit(data)


def test_only_xml_files_that_open_a_testsuite_look_like_reports() -> None:
    assert looks_like_junit("r/TEST-x.xml", b'<?xml version="1.0"?>\n<testsuite name="a">')
    assert looks_like_junit("a.XML", b"<testsuites>")
    assert not looks_like_junit("pom.xml", b"<project>")
    assert not looks_like_junit("r.txt", b"<testsuite>")
