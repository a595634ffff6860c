// What the coverage pages share: a percentage with its meter, the per-file table of a
// report (functions under each file), a session's Stop and Cancel, and the dialog that starts
// a session on an application's probes.
import { html, useState } from "./html.js";
import { api, query } from "./api.js";
import { Confirm, Dialog, ErrorNote } from "./components.js";
import { Link, navigate } from "./router.js";
import { plural } from "./format.js";

/** "73.5 %" with a meter; `totals`: {covered, total, percent}. */
export function Percent({ totals, wide }) {
  if (!totals) return html`<span class="muted">—</span>`;
  const good = totals.percent >= 80 ? "passed" : totals.percent >= 50 ? "pending" : "failed";
  return html`<span class=${wide ? "percent wide" : "percent"} title=${`${totals.covered} of ${totals.total} lines`}>
    <b>${totals.percent.toFixed(1)} %</b>
    <span class="meter" role="img" aria-label=${`${totals.percent.toFixed(1)} percent covered`}>
      <span class=${`fill-${good}`} style=${`width:${totals.percent}%`}></span></span>
    <span class="muted small">${totals.covered}/${totals.total}</span></span>`;
}

/** The source view's address for `path` of a build (over `session` and `test`, if given). */
export const sourceLink = (app, build, path, session, test) =>
  `/coverage/source${query({ app, build, path, session, test })}`;

/** A report's files (worst first), each with its functions on demand. */
export function Files({ report, session, test }) {
  const files = Object.entries(report.files).sort(
    ([pa, a], [pb, b]) => a.summary.percent - b.summary.percent || pa.localeCompare(pb),
  );
  if (!files.length) return html`<p class="muted">The build has no measured module.</p>`;
  return html`<div class="table-wrap"><table data-testid="files-table">
    <thead><tr><th>Module</th><th>Covered</th><th class="num">Missed lines</th><th>Functions</th></tr></thead>
    <tbody>${files.map(
      ([path, file]) => html`<tr key=${path} data-file=${path}>
        <td><${Link} to=${sourceLink(report.app, report.build, path, session, test)} class="mono">${path}<//></td>
        <td><${Percent} totals=${file.summary} /></td>
        <td class="num">${file.missing_lines.length}</td>
        <td><details><summary class="small">${plural(Object.keys(file.functions).length, "function")}</summary>
          <table class="functions"><tbody>${Object.entries(file.functions).map(
            ([name, f]) => html`<tr data-function=${name}><td class="mono small">${name}</td>
              <td class="num small">${f.covered}/${f.total}</td><td class="num small">${f.percent.toFixed(0)} %</td></tr>`,
          )}</tbody></table></details></td>
      </tr>`,
    )}</tbody></table></div>`;
}

/** What each test covered, the test shown linked (for `to(test)`). */
export function Tests({ tests, current, to }) {
  const entries = Object.entries(tests || {}).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return html`<p class="muted">No test was named: coverage is not split by test.</p>`;
  return html`<div class="table-wrap"><table data-testid="tests-table">
    <thead><tr><th>Test</th><th>Covered</th><th class="num">Modules</th></tr></thead>
    <tbody>${entries.map(
      ([name, t]) => html`<tr key=${name} data-test=${name} class=${name === current ? "expanded" : ""}>
        <td>${name
          ? html`<${Link} to=${to(name)} aria-current=${name === current ? "true" : undefined}>${name}<//>`
          : html`<span class="muted">(no test name)</span>`}</td>
        <td><${Percent} totals=${t.totals} /></td>
        <td class="num">${Object.values(t.files).filter((lines) => lines.length).length}</td>
      </tr>`,
    )}</tbody></table></div>`;
}

const dispatch = (session, body) =>
  api(`/coverage/apps/${encodeURIComponent(session.app)}/dispatch-action${query({ build: session.build })}`, {
    method: "POST",
    body,
  });

/** Stop (the probes send the rest, then it is finished) and Cancel (its data is discarded). */
export function SessionActions({ session, small, onDone }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [cancelling, setCancelling] = useState(false);
  if (session.state !== "active") return null;
  const payload = { sessionId: session.sessionId };
  const stop = async () => {
    setBusy(true);
    setError(null);
    try {
      await dispatch(session, { type: "STOP", payload });
      onDone?.();
    } catch (problem) {
      setError(problem);
    } finally {
      setBusy(false);
    }
  };
  const size = small ? " small" : "";
  return html`<span class="actions">
    <button type="button" class=${`button${size}`} onClick=${stop} disabled=${busy}
      aria-label=${`Stop session ${session.sessionId}`}>Stop</button>
    <button type="button" class=${`button danger${size}`} onClick=${() => setCancelling(true)}
      aria-label=${`Cancel session ${session.sessionId}`}>Cancel</button>
    <${ErrorNote} error=${error} what="Refused" />
    ${cancelling
      ? html`<${Confirm} title=${`Cancel session ${session.sessionId}?`} action="Cancel session"
          onClose=${() => setCancelling(false)}
          onConfirm=${async () => (await dispatch(session, { type: "CANCEL", payload }), onDone?.())}>
          <p>Everything it collected is discarded; Stop keeps it.</p><//>`
      : null}
  </span>`;
}

/** Start a session on every probe of `app` (its newest build). */
export function StartSession({ app, onClose }) {
  const [form, setForm] = useState({ testType: "MANUAL", testName: "", isRealtime: true, isGlobal: false });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const set = (key, checked) => (event) => setForm({ ...form, [key]: checked ? event.target.checked : event.target.value });
  const start = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const payload = { ...form, testName: form.testName || null };
      const answer = await api(`/coverage/apps/${encodeURIComponent(app.app)}/dispatch-action`, {
        method: "POST",
        body: { type: "START", payload },
      });
      onClose();
      navigate(`/coverage/sessions/${encodeURIComponent(answer.sessions[0].sessionId)}`);
    } catch (problem) {
      setError(problem);
      setBusy(false);
    }
  };
  return html`<${Dialog} title=${`Start a coverage session on ${app.app}`} onClose=${onClose}>
    <form onSubmit=${start}>
      <div class="dialog-body">
        <p class="muted small" style="margin:0">On every probe of build ${app.latest_build}
          (${app.probes_connected} connected), and on those that connect while it is open.</p>
        <div class="form-grid">
          <div class="field"><label for="cs-type">Test type</label>
            <input id="cs-type" value=${form.testType} onInput=${set("testType")} required maxlength="50" /></div>
          <div class="field"><label for="cs-name">Test name <span class="hint">optional</span></label>
            <input id="cs-name" value=${form.testName} onInput=${set("testName")} maxlength="1000" /></div>
        </div>
        <fieldset class="checks"><legend>Kind</legend>
          <label><input type="checkbox" checked=${form.isRealtime} onChange=${set("isRealtime", true)} /> Realtime (coverage rises as parts arrive)</label>
          <label><input type="checkbox" checked=${form.isGlobal} onChange=${set("isGlobal", true)} /> Global (one at a time)</label>
        </fieldset>
        <${ErrorNote} error=${error} what="Refused" />
      </div>
      <footer class="dialog-foot">
        <span style="flex:1"></span>
        <button type="button" class="button" onClick=${onClose}>Cancel</button>
        <button type="submit" class="button primary" disabled=${busy}>Start session</button>
      </footer>
    </form>
  <//>`;
}
