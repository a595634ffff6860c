// A module's source with its covered and missed lines marked, over a build's sessions (or
// one session), for every test or one.
import { html } from "../html.js";
import { api, query } from "../api.js";
import { Empty, ErrorNote, useLive } from "../components.js";
import { Percent, sourceLink } from "../coverage-parts.js";
import { buildLink } from "./coverage.js";
import { Link, navigate } from "../router.js";

export default function CoverageSource({ query: search }) {
  const [app, build, path, session, test] = ["app", "build", "path", "session", "test"].map((k) => search.get(k) || "");
  const request = `/coverage/builds/${encodeURIComponent(app)}/${encodeURIComponent(build)}/source${query({ path, session, test })}`;
  const every = `/coverage/builds/${encodeURIComponent(app)}/${encodeURIComponent(build)}/source${query({ path, session })}`;
  const { data, error } = useLive(
    async (signal) => {
      // The tests to choose from: those that covered the module at all (not only the one shown).
      const [view, all] = await Promise.all([api(request, { signal }), test ? api(every, { signal }) : null]);
      return { ...view, tests: (all || view).tests };
    },
    ["coverage"],
    [request],
    2000,
  );
  if (!app || !build || !path) {
    return html`<${Empty} title="Which module?"><p>Open a module from a <${Link} to="/coverage">coverage<//> report.</p><//>`;
  }
  const back = session
    ? html`<${Link} to=${`/coverage/sessions/${encodeURIComponent(session)}${query({ test })}`}>session ${session}<//>`
    : html`<${Link} to=${buildLink(app, build)}>build ${build}<//>`;
  if (!data) {
    return html`<div class="page-head"><h1 class="mono">${path}</h1></div>
      <${ErrorNote} error=${error} what="The source cannot be read" />${error ? null : html`<p class="muted loading">Loading…</p>`}`;
  }
  const missed = data.lines.filter((l) => l.state === "missed").length;
  return html`<div class="page-head">
      <h1><span class="mono">${path}</span></h1>
      <span class="sub muted">${app} ${build}, over ${back}${test ? html`, test ${test}` : ""}</span>
    </div>
    <${ErrorNote} error=${error} what="Not current" />
    <section class="panel">
      <div class="panel-head"><${Percent} totals=${data.totals} wide />
        <span class="muted small">${missed} lines missed</span></div>
      <div class="field"><label for="src-test">Test</label>
        <select id="src-test" value=${test} onChange=${(e) => navigate(sourceLink(app, build, path, session, e.target.value))}>
          <option value="">Every test</option>
          ${data.tests.filter(Boolean).map((name) => html`<option value=${name}>${name}</option>`)}
        </select></div>
    </section>
    <section class="panel source-panel">
      ${data.lines.length
        ? html`<ol class="source" data-testid="source" aria-label=${`The source of ${path}, covered and missed lines marked`}>${data.lines.map(
            (l) => html`<li class=${`src-${l.state}`} data-line=${l.number} data-state=${l.state}>
              <span class="src-no" aria-hidden="true">${l.number}</span><span class="skip">${l.state === "none" ? "" : `${l.state}: `}</span><code>${l.text || " "}</code></li>`,
          )}</ol>`
        : html`<p class="muted">The probe kept this module's source back (--no-source).</p>`}
    </section>`;
}
