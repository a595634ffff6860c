// A coverage session: what it is, its coverage so far (live: a realtime session's rises as
// parts arrive), its report per module and function, and per test (pick a test to see what
// it alone covered); Stop and Cancel (operators).
import { html } from "../html.js";
import { api, query } from "../api.js";
import { canOperate, Empty, ErrorNote, State, Time, useLive, useNow } from "../components.js";
import { Files, Percent, SessionActions, Tests } from "../coverage-parts.js";
import { buildLink, Kind } from "./coverage.js";
import { Link } from "../router.js";
import { duration, elapsed } from "../format.js";

export default function CoverageSession({ params, query: search, me }) {
  const id = params.id;
  const test = search.get("test") || "";
  const now = useNow();
  const base = `/coverage/sessions/${encodeURIComponent(id)}`;
  const { data, error, refresh } = useLive(
    async (signal) => {
      const session = await api(base, { signal });
      if (session.state === "cancelled") return { session, report: null };
      const [report, all] = await Promise.all([
        api(`${base}/report${query({ test })}`, { signal }),
        test ? api(`${base}/report`, { signal }) : null,
      ]);
      return { session, report, tests: (all || report).tests };
    },
    ["coverage"],
    [id, test],
    2000,
  );
  if (!data) {
    return error?.status === 404
      ? html`<${Empty} title=${`There is no coverage session ${id}`}><p><${Link} to="/coverage">All sessions<//></p><//>`
      : html`<${ErrorNote} error=${error} what="The session cannot be read" />${error ? null : html`<p class="muted loading">Loading…</p>`}`;
  }
  const { session: s, report, tests } = data;
  const to = (name) => `/coverage/sessions/${encodeURIComponent(id)}${query({ test: name === test ? "" : name })}`;
  return html`<div class="page-head">
      <h1><span class="muted">Coverage session</span> <span class="mono">${s.sessionId}</span></h1>
      <${State} state=${s.state} />
      ${canOperate(me) ? html`<${SessionActions} session=${s} onDone=${refresh} />` : null}
    </div>
    <${ErrorNote} error=${error} what="Not current" />
    <section class="panel"><dl class="facts" data-testid="coverage-facts">
      <div><dt>Application</dt><dd>${s.app}</dd></div>
      <div><dt>Build</dt><dd><${Link} to=${buildLink(s.app, s.build)}>${s.build}<//></dd></div>
      <div><dt>Kind</dt><dd><${Kind} session=${s} /></dd></div>
      <div><dt>Started</dt><dd><${Time} at=${s.startedAt} now=${now} /> by ${s.startedBy}</dd></div>
      <div><dt>Duration</dt><dd>${duration(elapsed(s.startedAt, s.finishedAt, now))}</dd></div>
      <div><dt>Probes</dt><dd class="mono small">${s.agents.join(", ") || "—"}</dd></div>
      ${s.jobId ? html`<div><dt>Job</dt><dd><${Link} to=${`/jobs/${s.jobId}`}>#${s.jobId}<//></dd></div>` : null}
      <div><dt>Coverage</dt><dd data-testid="session-totals">${s.state === "cancelled"
        ? html`<span class="muted">discarded</span>`
        : html`<${Percent} totals=${s.totals} wide />`}</dd></div>
    </dl></section>
    ${s.state === "cancelled"
      ? html`<div class="note note-info" role="status">This session was cancelled: its data was discarded.</div>`
      : html`<section class="panel" aria-labelledby="files-h"><div class="panel-head"><h2 id="files-h">Modules${test ? html` <span class="muted">of test</span> ${test}` : null}</h2>
            ${report ? html`<${Percent} totals=${report.totals} />` : null}</div>
            ${test ? html`<p class="small"><${Link} to=${to(test)}>Show every test's coverage<//></p>` : null}
            ${report ? html`<${Files} report=${report} session=${s.sessionId} test=${test} />` : null}</section>
          <section class="panel" aria-labelledby="tests-h"><div class="panel-head"><h2 id="tests-h">Tests</h2>
            <span class="muted small">pick one to see what it covered</span></div>
            <${Tests} tests=${tests} current=${test} to=${to} /></section>
        <p class="small muted">Downloads:${" "}<a href=${`/api/v1${base}/report?format=cobertura`}>Cobertura XML</a>${" · "}<a
          href=${`/api/v1${base}/report?format=lcov`}>LCOV</a>${" · "}<a href=${`/api/v1${base}/report`}>JSON</a></p>`}`;
}
