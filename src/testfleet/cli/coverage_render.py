"""Rich tables of coverage: probes, sessions, reports, risks and tests to run."""

from __future__ import annotations

from collections.abc import Iterable

from rich import box
from rich.table import Table
from rich.text import Text

from testfleet.cli.render import local_time
from testfleet.protocol.coverage_api import (
    ProbeInfo,
    Report,
    Risks,
    SessionInfo,
    TestsToRun,
    Totals,
)


def percent_text(totals: Totals) -> Text:
    """The percentage, green from 80 %, yellow from 50 %, red below."""
    style = "green" if totals.percent >= 80 else "yellow" if totals.percent >= 50 else "red"
    return Text(f"{totals.percent:.1f} %", style=style)


def probes_table(probes: Iterable[ProbeInfo]) -> Table:
    """Connected probes."""
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("agent", "app", "build", "hub", "connected", "active sessions"):
        table.add_column(column)
    for p in probes:
        table.add_row(
            p.agent_id,
            p.app,
            p.build,
            p.hub,
            local_time(p.connected_at),
            ", ".join(p.active_sessions),
        )
    return table


def sessions_table(sessions: Iterable[SessionInfo]) -> Table:
    """Sessions with their coverage (the id whole: it is what the other commands take)."""
    sessions = list(sessions)
    table = Table(box=box.SIMPLE_HEAD)
    widest = max((len(s.sessionId) for s in sessions), default=7)
    table.add_column("session", no_wrap=True, min_width=widest)
    for column in ("state", "build", "test", "covered"):
        table.add_column(column, justify="right" if column == "covered" else "left")
    for s in sessions:
        style = "green" if s.state == "finished" else "cyan" if s.state == "active" else "yellow"
        kind = (
            s.testType + (" realtime" if s.isRealtime else "") + (" global" if s.isGlobal else "")
        )
        table.add_row(
            s.sessionId,
            Text(s.state, style=style),
            f"{s.app} {s.build}",
            f"{kind} {s.testName}" if s.testName else kind,
            Text.assemble(f"{s.totals.covered}/{s.totals.total} ", percent_text(s.totals)),
        )
    return table


def report_table(report: Report, *, functions: bool = False) -> Table:
    """Coverage per module (and per function), with the total."""
    title = f"{report.app} {report.build}" + (f", test {report.test}" if report.test else "")
    table = Table(title=title, box=box.SIMPLE_HEAD, show_footer=True)
    table.add_column("module", footer="total")
    table.add_column("covered", justify="right", footer=str(report.totals.covered))
    table.add_column("lines", justify="right", footer=str(report.totals.total))
    table.add_column("%", justify="right", footer=percent_text(report.totals))
    table.add_column("missing")
    for path, data in report.files.items():
        table.add_row(
            path,
            str(data.summary.covered),
            str(data.summary.total),
            percent_text(data.summary),
            _ranges(data.missing_lines),
        )
        if functions:
            for name, fn in data.functions.items():
                table.add_row(
                    Text(f"  {name}", style="dim"),
                    str(fn.covered),
                    str(fn.total),
                    percent_text(Totals(covered=fn.covered, total=fn.total, percent=fn.percent)),
                    "",
                )
    return table


def risks_table(risks: Risks) -> Table:
    """A build's risks."""
    title = f"{risks.app} {risks.build} since {risks.parent or '(no parent build)'}: "
    title += f"{risks.tested}/{risks.total} risks tested"
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for column in ("module", "function", "line", "kind", "covered", "tested"):
        table.add_column(column)
    for r in risks.risks:
        table.add_row(
            r.path,
            r.function,
            str(r.line),
            r.kind,
            f"{r.covered}/{r.total}",
            Text("yes", style="green") if r.tested else Text("no", style="bold red"),
        )
    return table


def tests_table(tests: TestsToRun) -> Table:
    """Tests to run."""
    title = f"{tests.app} {tests.build}: tests of {tests.parent or '(no parent build)'} to run"
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for column in ("test", "type", "touched"):
        table.add_column(column)
    for t in tests.tests:
        table.add_row(t.name, t.testType, ", ".join(t.functions))
    return table


def _ranges(lines: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3, 7'."""
    parts: list[str] = []
    start = previous = None
    for line in [*lines, None]:
        if line is not None and previous is not None and line == previous + 1:
            previous = line
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = line
    return ", ".join(parts)
