// Coverage: the applications whose probes reported, the probes connected now, and the
// coverage sessions, newest first, with their coverage so far (rising live for realtime
// sessions); start a session on an application, stop or cancel one (operators).
import { html, useState } from "../html.js";
import { api, query } from "../api.js";
import { canOperate, Empty, ErrorNote, State, Time, useLive, useNow } from "../components.js";
import { Percent, SessionActions, StartSession } from "../coverage-parts.js";
import { FilterBar, valuesOf } from "../filter-bar.js";
import { Link, navigate } from "../router.js";
import { duration, elapsed, plural } from "../format.js";

const KEYS = ["app", "state"];
const LIMIT = 100;

export const buildLink = (app, build) => `/coverage/builds/${encodeURIComponent(app)}/${encodeURIComponent(build)}`;

function Apps({ apps, now, me, onStart }) {
  return html`<div class="table-wrap"><table data-testid="apps-table">
    <thead><tr><th>Application</th><th>Newest build</th><th class="num">Builds</th><th class="num">Probes connected</th>
      ${canOperate(me) ? html`<th><span class="skip">Actions</span></th>` : null}</tr></thead>
    <tbody>${apps.map(
      (a) => html`<tr key=${a.app} data-app=${a.app}>
        <td><strong>${a.app}</strong></td>
        <td><${Link} to=${buildLink(a.app, a.latest_build)}>${a.latest_build}<//>
          <span class="muted small"> <${Time} at=${a.latest_at} now=${now} /></span></td>
        <td class="num">${a.builds}</td>
        <td class="num">${a.probes_connected}</td>
        ${canOperate(me)
          ? html`<td class="actions"><button type="button" class="button small" disabled=${!a.probes_connected}
              title=${a.probes_connected ? "" : "No probe of this application is connected"}
              onClick=${() => onStart(a)} aria-label=${`Start a session on ${a.app}`}>Start session…</button></td>`
          : null}
      </tr>`,
    )}</tbody></table></div>`;
}

function Probes({ probes, now }) {
  if (!probes.length) return html`<p class="muted">No probe is connected now.</p>`;
  return html`<div class="table-wrap"><table data-testid="probes-table">
    <thead><tr><th>Probe</th><th>Application</th><th>Build</th><th class="hide-narrow">Hub</th><th>Connected</th><th>Open sessions</th></tr></thead>
    <tbody>${probes.map(
      (p) => html`<tr key=${p.agent_id} data-probe=${p.agent_id}>
        <td class="mono small">${p.agent_id}</td>
        <td>${p.app}</td>
        <td><${Link} to=${buildLink(p.app, p.build)}>${p.build}<//></td>
        <td class="hide-narrow">${p.hub}</td>
        <td><${Time} at=${p.connected_at} now=${now} /></td>
        <td>${p.active_sessions.map((s) => html`<${Link} to=${`/coverage/sessions/${encodeURIComponent(s)}`}>${s}<//> `)}</td>
      </tr>`,
    )}</tbody></table></div>`;
}

/** The kind of a session in words: its test type, name and flags. */
export function Kind({ session: s }) {
  return html`${s.testType}${s.testName ? html` <span class="muted">·</span> ${s.testName}` : null}
    ${s.isRealtime ? html` <span class="tag">realtime</span>` : null}${s.isGlobal ? html` <span class="tag">global</span>` : null}`;
}

export function Sessions({ sessions, now, me, refresh }) {
  return html`<div class="table-wrap"><table data-testid="coverage-sessions-table">
    <thead><tr><th>Session</th><th>State</th><th>Application, build</th><th>Kind</th><th>Coverage</th>
      <th>Started</th><th class="num">Duration</th><th class="hide-narrow">By</th>
      ${canOperate(me) ? html`<th><span class="skip">Actions</span></th>` : null}</tr></thead>
    <tbody>${sessions.map(
      (s) => html`<tr key=${s.sessionId} data-coverage-session=${s.sessionId}>
        <td><${Link} to=${`/coverage/sessions/${encodeURIComponent(s.sessionId)}`} class="mono">${s.sessionId}<//></td>
        <td><${State} state=${s.state} /></td>
        <td>${s.app} <${Link} to=${buildLink(s.app, s.build)}>${s.build}<//></td>
        <td><${Kind} session=${s} /></td>
        <td>${s.state === "cancelled" ? html`<span class="muted">discarded</span>` : html`<${Percent} totals=${s.totals} />`}</td>
        <td><${Time} at=${s.startedAt} now=${now} /></td>
        <td class="num">${duration(elapsed(s.startedAt, s.finishedAt, now))}</td>
        <td class="hide-narrow">${s.jobId ? html`<${Link} to=${`/jobs/${s.jobId}`}>job #${s.jobId}<//>` : s.startedBy}</td>
        ${canOperate(me) ? html`<td class="actions"><${SessionActions} session=${s} small onDone=${refresh} /></td>` : null}
      </tr>`,
    )}</tbody></table></div>`;
}

export default function Coverage({ query: search, me }) {
  const now = useNow();
  const [starting, setStarting] = useState(null);
  const values = valuesOf(search, KEYS);
  const sessionsPath = `/coverage/sessions${query({ ...values, limit: LIMIT })}`;
  const { data, error, refresh } = useLive(
    (signal) =>
      Promise.all([api("/coverage/apps", { signal }), api("/coverage/agents", { signal }), api(sessionsPath, { signal })]),
    ["coverage"],
    [sessionsPath],
    1000,
  );
  const head = html`<div class="page-head"><h1>Coverage</h1>
    <span class="sub muted">What each test exercises in applications under a probe</span></div>`;
  if (!data) return html`${head}<${ErrorNote} error=${error} what="Coverage cannot be read" />`;
  const [{ apps }, { agents: probes }, { sessions }] = data;
  if (!apps.length) {
    return html`${head}<section class="panel"><${Empty} title="No application has reported yet">
      <p>Run one under a probe: <code>testfleet probe --hub ${location.origin} --app shop --build 1.0 -- python -m shop.serve</code>.
        Its builds, probes and sessions appear here; see docs/coverage.md.</p><//></section>`;
  }
  const fields = [
    { key: "app", label: "Application", options: [["", "Any application"], ...apps.map((a) => [a.app, a.app])] },
    { key: "state", label: "State", options: [["", "Any state"], ...["active", "stopping", "finished", "cancelled"].map((s) => [s, s])] },
  ];
  return html`${head}
    <${ErrorNote} error=${error} what="Not current" />
    ${starting ? html`<${StartSession} app=${starting} onClose=${() => setStarting(null)} />` : null}
    <div class="grid-2">
      <section class="panel" aria-labelledby="apps-h"><div class="panel-head"><h2 id="apps-h">Applications</h2>
        <span class="muted small">${plural(apps.length, "application")}</span></div>
        <${Apps} apps=${apps} now=${now} me=${me} onStart=${setStarting} /></section>
      <section class="panel" aria-labelledby="probes-h"><div class="panel-head"><h2 id="probes-h">Probes</h2>
        <span class="muted small">${plural(probes.length, "probe")} connected</span></div>
        <${Probes} probes=${probes} now=${now} /></section>
    </div>
    <section class="panel" aria-labelledby="cs-h"><div class="panel-head"><h2 id="cs-h">Sessions</h2>
      <span class="muted small">newest ${LIMIT} at most</span></div>
      <${FilterBar} id="fc" label="Filter coverage sessions" fields=${fields} values=${values}
        apply=${(v) => navigate(`/coverage${query(v)}`, { replace: true })} />
      ${sessions.length
        ? html`<${Sessions} sessions=${sessions} now=${now} me=${me} refresh=${refresh} />`
        : KEYS.some((k) => values[k])
          ? html`<p class="muted">No session matches the filters.</p>`
          : html`<${Empty} title="No session yet"><p>${canOperate(me) ? "Start one with Start session…, or with " : "Start one with "}
              <code>testfleet coverage start --app NAME --realtime</code>, or run tests with <code>pytest --testfleet-session</code>.</p><//>`}
    </section>`;
}
