"""The UI's pure modules, run in the browser: times, durations, sizes, YAML, pointers, ANSI
lines, schedule params."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, Page

from tests.browser.conftest import new_page
from tests.conftest import LiveHub

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(scope="module")
def blank(browser: Browser, ui_hub: LiveHub) -> Iterator[Page]:
    context, page = new_page(browser, ui_hub.url)
    page.goto("/ui/static/dev/favicon.svg")
    yield page
    context.close()


def run(page: Page, module: str, code: str, *args: Any) -> Any:
    """Evaluate `code` (a function of the module `m` and `args`) in the page."""
    return page.evaluate(
        f"async (args) => {{ const m = await import('/ui/static/dev/js/{module}'); "
        f"return ({code})(m, ...args); }}",
        list(args),
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "250 ms"),
        (4.04, "4.0 s"),
        (42, "42 s"),
        (185, "3 min 5 s"),
        (7500, "2 h 5 min"),
        (90000, "1 d 1 h"),
        (None, ""),
    ],
)
def test_durations_read_as_people_say_them(blank: Page, seconds: float | None, text: str) -> None:
    assert run(blank, "format.js", "(m, s) => m.duration(s)", seconds) == text


def test_relative_times(blank: Page) -> None:
    now = 1_700_000_000_000
    cases = {0: "just now", -30_000: "30 sec. ago", -180_000: "3 min. ago", 7_200_000: "in 2 hr."}
    for offset, text in cases.items():
        got = run(blank, "format.js", "(m, t, now) => m.ago(new Date(t), now)", now + offset, now)
        assert got == text


DOCUMENTS: list[Any] = [
    {"name": "smoke", "tags": ["nightly", "yes"], "runs": 1, "empty": {}, "none": None},
    {"tests": [{"name": "t", "steps": [{"name": "s", "params": {"args": ["-c", "print(1)"]}}]}]},
    {"tricky": ["1.0", "true", "a: b", "-x", " lead", "#hash", "multi\nline", "", "é"]},
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_a_descriptor_shown_as_yaml_reads_back_the_same(blank: Page, document: Any) -> None:
    text = run(blank, "format.js", "(m, d) => m.toYaml(d)", document)
    assert yaml.safe_load(text) == document


YAML = """name: smoke
tests:
  - name: hello
    steps:
      - {name: say, plugin: echo}
      - name: run
        plugin: cmd
        params: {executable: ""}
  - name: two
    steps:
    - name: x
      plugin: nope
"""


@pytest.mark.parametrize(
    ("pointer", "line"),
    [
        ("/name", 1),
        ("/tests/0/steps/1/params/executable", 8),
        ("/tests/1/steps/0/plugin", 12),
        ("/tests/0/steps/0", 5),
        ("/nothing/here", 1),
        ("/tests/9/name", 2),
    ],
)
def test_an_error_pointer_is_found_at_its_line(blank: Page, pointer: str, line: int) -> None:
    assert run(blank, "pointer.js", "(m, t, p) => m.lineOf(t, p)", YAML, pointer) == line


def test_log_chunks_become_lines_with_colours_kept_across_chunks(blank: Page) -> None:
    lines = run(
        blank,
        "job-log.js",
        """(m, chunks) => {
            const log = new m.LogLines();
            chunks.forEach((text, i) => log.add(
                {id: i + 1, task_id: 7, data: {text, step_index: 0, stream: "stdout"}}));
            return log.lines.map((l) => [l.text, l.html]);
        }""",
        ["a\nb", "c\n\x1b[31mred", " still red\n<b>", "\x1b[0m\n"],
    )
    texts = [text for text, _ in lines]
    assert texts == ["a", "bc", "\x1b[31mred still red", "<b>\x1b[0m"]
    assert "color:rgb(187,0,0)" in lines[2][1].replace(" ", "")
    assert "&lt;b&gt;" in lines[3][1]


def test_a_log_view_hears_only_of_lines_after_it_drew_the_rest(blank: Page) -> None:
    told = run(
        blank,
        "job-log.js",
        """(m) => {
            const log = new m.LogLines();
            const event = (id, text) =>
                ({id, task_id: 1, data: {text, step_index: 0, stream: "stdout"}});
            log.add(event(1, "before the view\\n"));
            const heard = [];
            log.watch((added, changed) => heard.push(...added.map((l) => l.text)));
            log.add(event(2, "after\\n"));
            log.flush();
            return [log.lines.map((l) => l.text), heard];
        }""",
    )
    assert told == [["before the view", "after"], ["after"]]


def _task(task_id: int, attempt: int, state: str, error: str | None, step: dict[str, Any]) -> Any:
    return {
        "task_id": task_id,
        "device_id": f"a:slot-{attempt}",
        "device_name": f"slot-{attempt}",
        "agent": "a",
        "state": state,
        "attempt": attempt,
        "started_at": None,
        "ended_at": None,
        "error": error,
        "steps": [step],
    }


def test_the_timeline_says_why_in_words(blank: Page) -> None:
    failed_step = {
        "index": 0,
        "name": "run",
        "plugin": "cmd",
        "state": "failed",
        "exit_code": 3,
        "started_at": None,
        "ended_at": None,
        "error": None,
    }
    lost_step = {**failed_step, "state": "incomplete", "exit_code": None}
    job = {
        "state": "running",
        "created_at": "2026-01-01T00:00:00Z",
        "final_reporters": [],
        "runs": [
            {
                "number": 1,
                "state": "running",
                "started_at": None,
                "ended_at": None,
                "reporters": [],
                "tests": [
                    {
                        "index": 0,
                        "name": "flaky",
                        "state": "failed",
                        "attempts": 2,
                        "started_at": None,
                        "ended_at": None,
                        "error": "0/1 tasks passed",
                        "tasks": [
                            _task(1, 1, "failed", None, failed_step),
                            _task(2, 2, "incomplete", "agent 'a' lost", lost_step),
                        ],
                    },
                    {
                        "index": 1,
                        "name": "waits",
                        "state": "pending",
                        "attempts": 0,
                        "started_at": None,
                        "ended_at": None,
                        "error": None,
                        "tasks": [],
                        "waiting": "waiting: no device has labels pool=nope",
                    },
                ],
            }
        ],
    }
    text = blank.evaluate(
        """async (job) => {
            const {html, render} = await import("/ui/static/dev/js/html.js");
            const {Timeline} = await import("/ui/static/dev/js/job-timeline.js");
            const box = document.createElementNS("http://www.w3.org/1999/xhtml", "div");
            render(html`<${Timeline} job=${job} onSelect=${() => {}} now=${Date.now()} />`, box);
            return box.textContent;
        }""",
        job,
    )
    assert "Retried after attempt 1 on slot-1: step run exited with code 3" in text
    assert "agent 'a' lost" in text
    assert "0/1 tasks passed" in text
    assert "waiting: no device has labels pool=nope" in text


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 bytes"), (1, "1 byte"), (1023, "1023 bytes"), (1900, "1.9 KB"), (52_428_800, "50 MB")],
)
def test_sizes_read_as_people_say_them(blank: Page, size: int, text: str) -> None:
    assert run(blank, "format.js", "(m, n) => m.bytes(n)", size) == text


def test_a_time_in_a_named_zone_and_an_unknown_zone(blank: Page) -> None:
    when = "2025-01-15T01:00:00Z"
    berlin = run(blank, "format.js", "(m, t) => m.zoneTime(t, 'Europe/Berlin')", when)
    assert re.search(r"Jan 15, 2025, 2:00\s*AM", berlin), berlin
    assert run(blank, "format.js", "(m, t) => m.zoneTime(t, 'Mars/Olympus')", when) == ""


def test_schedule_params_are_name_value_lines(blank: Page) -> None:
    parse = "(m, text) => { try { return m.parseParams(text); } catch (e) { return e.message; } }"
    text = "version=1.2\n\n# a comment\n debug = true \nurl=http://x/?a=b"
    assert run(blank, "schedule-parts.js", parse, text) == {
        "version": "1.2",
        "debug": "true",
        "url": "http://x/?a=b",
    }
    assert run(blank, "schedule-parts.js", parse, "ok=1\n=nameless") == (
        "line 2: give a parameter as NAME=VALUE"
    )
