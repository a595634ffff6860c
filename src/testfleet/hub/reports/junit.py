"""Read JUnit XML (Ant/Maven/Gradle's, and pytest's flavour of it) into test cases.

The XML goes through defusedxml: a document that declares entities (the "billion laughs"
expansion) or reaches for external resources is refused, never expanded. A document that is
not well-formed, or not a JUnit report, is a `ReportError` that says what and where.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

MAX_REPORT_BYTES = 64 * 1024 * 1024
SNIFF_BYTES = 4096
MAX_NAME = 500
MAX_MESSAGE = 2000
MAX_DETAIL = 64 * 1024
_SNIFF = re.compile(rb"<\s*testsuites?[\s>/]")


class ReportError(ValueError):
    """The file cannot be read as a JUnit report; the message says why (and where)."""


@dataclass(frozen=True)
class ParsedCase:
    """One test case as a report states it."""

    suite: str
    classname: str
    name: str
    outcome: str
    duration: float | None
    message: str | None
    detail: str | None


def looks_like_junit(path: str, head: bytes) -> bool:
    """True for an .xml file whose first bytes open a <testsuites> or <testsuite>."""
    return path.lower().endswith(".xml") and _SNIFF.search(head[:SNIFF_BYTES]) is not None


def parse_junit(data: bytes) -> list[ParsedCase]:
    """Every test case of a JUnit XML document, in document order."""
    if len(data) > MAX_REPORT_BYTES:
        raise ReportError(f"larger than {MAX_REPORT_BYTES // (1024 * 1024)} MiB; not read")
    try:
        root = SafeET.fromstring(data, forbid_dtd=False)
    except DefusedXmlException as error:
        raise ReportError(f"refused: {_defused_reason(error)}") from None
    except ParseError as error:
        line, column = error.position
        raise ReportError(f"not well-formed XML at line {line}, column {column + 1}") from None
    tag = _local(root.tag)
    if tag not in ("testsuites", "testsuite"):
        raise ReportError(f"the root element is <{tag}>, not <testsuites> or <testsuite>")
    return list(_cases(root, _text(root.get("name"))))


def _cases(element: Element, suite: str) -> Iterator[ParsedCase]:
    for child in element:
        tag = _local(child.tag)
        if tag == "testsuite":
            yield from _cases(child, _text(child.get("name")) or suite)
        elif tag == "testcase":
            yield _case(child, suite)


def _case(element: Element, suite: str) -> ParsedCase:
    outcome, message, detail = "passed", None, None
    for kind in ("error", "failure", "skipped"):
        found = next((c for c in element if _local(c.tag) == kind), None)
        if found is not None:
            outcome = "failed" if kind == "failure" else kind
            message = _clip(found.get("message") or found.get("type"), MAX_MESSAGE)
            detail = _clip((found.text or "").strip() or None, MAX_DETAIL)
            break
    return ParsedCase(
        suite=_text(suite),
        classname=_text(element.get("classname") or element.get("class")),
        name=_text(element.get("name")) or "(unnamed)",
        outcome=outcome,
        duration=_seconds(element.get("time")),
        message=message,
        detail=detail,
    )


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.replace(",", ""))
    except ValueError:
        return None
    return seconds if seconds >= 0 and seconds == seconds else None


def _local(tag: object) -> str:
    text = tag if isinstance(tag, str) else ""
    return text.rsplit("}", 1)[-1]


def _text(value: str | None) -> str:
    return (value or "")[:MAX_NAME]


def _clip(value: str | None, limit: int) -> str | None:
    if value is None or len(value) <= limit:
        return value
    return value[: limit - 15] + "... (truncated)"


def _defused_reason(error: DefusedXmlException) -> str:
    name = type(error).__name__
    if name == "EntitiesForbidden":
        return "the document declares XML entities (possible entity-expansion attack)"
    if name == "ExternalReferenceForbidden":
        return "the document refers to external resources"
    if name == "DTDForbidden":
        return "the document has a DTD"
    return f"unsafe XML ({name})"
