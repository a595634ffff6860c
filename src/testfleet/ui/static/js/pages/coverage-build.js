// A build of an application: its coverage over all its sessions, per module, and test impact
// analysis against the build before it: the new and modified functions (risks), which of
// them this build's sessions have covered, and the tests of the build before that touched a
// modified function (the tests to run).
import { html } from "../html.js";
import { api, query } from "../api.js";
import { Empty, ErrorNote, State, Time, useLive, useNow } from "../components.js";
import { Files, Percent, sourceLink } from "../coverage-parts.js";
import { buildLink, Sessions } from "./coverage.js";
import { Link } from "../router.js";

function Risks({ risks, app, build }) {
  if (!risks.parent) return html`<p class="muted">This is the application's first build: nothing to compare with.</p>`;
  if (!risks.risks.length) return html`<p class="muted">No function is new or changed since build ${risks.parent}.</p>`;
  return html`<div class="table-wrap"><table data-testid="risks-table">
    <thead><tr><th>Function</th><th>Module</th><th>Change</th><th>Covered in this build</th></tr></thead>
    <tbody>${risks.risks.map(
      (r) => html`<tr key=${`${r.path}:${r.function}`} data-risk=${`${r.path}:${r.function}`}>
        <td class="mono">${r.function}</td>
        <td><${Link} to=${sourceLink(app, build, r.path)} class="mono small">${r.path}<//><span class="muted small">:${r.line}</span></td>
        <td><span class="tag">${r.kind}</span></td>
        <td><${State} state=${r.tested ? "covered" : "missed"} label=${r.tested ? `tested ${r.covered}/${r.total}` : `untested 0/${r.total}`} /></td>
      </tr>`,
    )}</tbody></table></div>`;
}

function TestsToRun({ tests, parent }) {
  if (!parent) return null;
  if (!tests.length) {
    return html`<p class="muted">No test recorded on build ${parent} touched a modified function.</p>`;
  }
  return html`<div class="table-wrap"><table data-testid="tests-to-run">
    <thead><tr><th>Test</th><th>Type</th><th>Modified functions it touched</th></tr></thead>
    <tbody>${tests.map(
      (t) => html`<tr key=${t.name} data-test=${t.name}><td>${t.name}</td><td>${t.testType}</td>
        <td class="mono small">${t.functions.join(", ")}</td></tr>`,
    )}</tbody></table></div>`;
}

export default function CoverageBuild({ params, me }) {
  const { app, build } = params;
  const now = useNow();
  const base = `/coverage/builds/${encodeURIComponent(app)}/${encodeURIComponent(build)}`;
  const { data, error, refresh } = useLive(
    (signal) =>
      Promise.all([
        api(base, { signal }),
        api(`${base}/risks`, { signal }),
        api(`${base}/tests-to-run`, { signal }),
        api(`/coverage/sessions${query({ app, build, limit: 100 })}`, { signal }),
        api(`${base}/report`, { signal }),
        api(`/coverage/builds${query({ app, limit: 20 })}`, { signal }),
      ]),
    ["coverage"],
    [base],
    2000,
  );
  if (!data) {
    return error?.status === 404
      ? html`<${Empty} title=${`There is no build ${build} of ${app}`}><p><${Link} to="/coverage">Coverage<//></p><//>`
      : html`<${ErrorNote} error=${error} what="The build cannot be read" />${error ? null : html`<p class="muted loading">Loading…</p>`}`;
  }
  const [info, risks, toRun, { sessions }, report, { builds }] = data;
  return html`<div class="page-head">
      <h1><span class="muted">Build</span> ${app} ${build}</h1>
      ${info.parent ? html`<span class="sub muted">after <${Link} to=${buildLink(app, info.parent)}>${info.parent}<//></span>` : null}
    </div>
    ${builds.length > 1
      ? html`<nav class="small" aria-label=${`Builds of ${app}`}>Builds of ${app}, newest first:${builds.map(
          (b) => html` ${b.build === build ? html`<b aria-current="page">${b.build}</b>` : html`<${Link} to=${buildLink(app, b.build)}>${b.build}<//>`}`,
        )}</nav>`
      : null}
    <${ErrorNote} error=${error} what="Not current" />
    <section class="panel"><dl class="facts">
      <div><dt>Announced</dt><dd><${Time} at=${info.created_at} now=${now} /></dd></div>
      <div><dt>Modules</dt><dd>${info.classes}</dd></div>
      <div><dt>Functions</dt><dd>${info.functions}</dd></div>
      <div><dt>Lines measured</dt><dd>${info.probes}</dd></div>
      <div><dt>Coverage over its sessions</dt><dd data-testid="build-totals"><${Percent} totals=${info.totals} wide /></dd></div>
    </dl></section>
    <section class="panel" aria-labelledby="risks-h"><div class="panel-head"><h2 id="risks-h">Risks: new and modified functions</h2>
      ${risks.parent ? html`<span class="muted small" data-testid="risks-summary">${risks.tested} of ${risks.total} tested</span>` : null}</div>
      <${Risks} risks=${risks} app=${app} build=${build} /></section>
    ${toRun.parent
      ? html`<section class="panel" aria-labelledby="ttr-h"><div class="panel-head"><h2 id="ttr-h">Tests to run</h2>
          <span class="muted small">recorded on build ${toRun.parent}</span></div><${TestsToRun} tests=${toRun.tests} parent=${toRun.parent} /></section>`
      : null}
    <section class="panel" aria-labelledby="bs-h"><div class="panel-head"><h2 id="bs-h">Sessions of this build</h2></div>
      ${sessions.length ? html`<${Sessions} sessions=${sessions} now=${now} me=${me} refresh=${refresh} />` : html`<p class="muted">No session yet.</p>`}</section>
    <section class="panel" aria-labelledby="bm-h"><div class="panel-head"><h2 id="bm-h">Modules</h2></div>
      <${Files} report=${report} /></section>`;
}
