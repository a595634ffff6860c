// A gateway session: which device and node it got, what was asked and given, its commands
// as a timeline (each with its status and duration, live while it runs) and the screenshot
// the driver took as it ended; kill it (operators).
import { html, useRef } from "../html.js";
import { api, query } from "../api.js";
import { canOperate, Empty, ErrorNote, State, Time, useLive, useNow } from "../components.js";
import { asked, KillSession } from "./sessions.js";
import { Link } from "../router.js";
import { duration, elapsed, localTime } from "../format.js";

const BATCH = 1000;
const MAX_SHOWN = 5000;

function Commands({ commands, start, total }) {
  if (!commands.length) return html`<p class="muted">No command yet.</p>`;
  const zero = new Date(start || commands[0].at).getTime();
  const slowest = Math.max(...commands.map((c) => c.duration_ms), 1);
  return html`<div class="table-wrap"><table data-testid="commands-table">
      <caption class="skip">Commands, in order</caption>
      <thead><tr><th class="num">#</th><th class="num">At</th><th>Command</th><th>Status</th>
        <th class="num">Duration</th><th class="hide-narrow"><span class="skip">Relative duration</span></th></tr></thead>
      <tbody>${commands.map(
        (c, i) => html`<tr key=${c.id} data-command=${c.id} class=${c.status >= 400 ? "failed" : ""}>
          <td class="num muted">${i + 1}</td>
          <td class="num" title=${localTime(c.at)}>+${duration((new Date(c.at).getTime() - zero) / 1000)}</td>
          <td><code>${c.command}</code></td>
          <td>${c.status >= 400
            ? html`<${State} state="failed" label=${`${c.status} ${c.error || ""}`} />`
            : html`<${State} state="passed" label=${String(c.status)} />`}</td>
          <td class="num">${duration(c.duration_ms / 1000)}</td>
          <td class="hide-narrow"><span class="meter" aria-hidden="true"><span class="fill-duration" style=${`width:${(100 * c.duration_ms) / slowest}%`}></span></span></td>
        </tr>`,
      )}</tbody></table></div>
    ${total > commands.length ? html`<p class="muted small">The first ${commands.length} of ${total} commands are shown.</p>` : null}`;
}

export default function Session({ params, me }) {
  const key = params.id;
  const now = useNow();
  const seen = useRef({ key: null, commands: [], after: 0 });
  const { data, error, refresh } = useLive(
    async (signal) => {
      if (seen.current.key !== key) seen.current = { key, commands: [], after: 0 };
      const session = await api(`/sessions/${encodeURIComponent(key)}`, { signal });
      const known = seen.current;
      while (known.commands.length < MAX_SHOWN) {
        const page = await api(
          `/sessions/${session.id}/commands${query({ after: known.after, limit: BATCH })}`,
          { signal },
        );
        known.commands = known.commands.concat(page.commands);
        known.after = page.next_after;
        if (page.commands.length < BATCH) break;
      }
      return { session, commands: known.commands };
    },
    ["sessions"],
    [key],
  );
  if (!data) {
    return error?.status === 404 || error?.status === 422
      ? html`<${Empty} title=${`There is no session ${key}`}><p><${Link} to="/sessions">All sessions<//></p><//>`
      : html`<${ErrorNote} error=${error} what="The session cannot be read" />${error ? null : html`<p class="muted loading">Loading…</p>`}`;
  }
  const { session: s, commands } = data;
  return html`<div class="page-head">
      <h1><span class="muted">Session</span> #${s.id}</h1>
      <${State} state=${s.state} />
      <span class="sub muted">${asked(s)}</span>
      ${canOperate(me) ? html`<${KillSession} session=${s} onDone=${refresh} />` : null}
    </div>
    <${ErrorNote} error=${error} what="Not current" />
    ${s.end_reason ? html`<div class="note note-info" role="status">Ended: ${s.end_reason}</div>` : null}
    <section class="panel"><dl class="facts" data-testid="session-facts">
      <div><dt>WebDriver id</dt><dd class="mono small">${s.session_id || "—"}</dd></div>
      <div><dt>Device</dt><dd>${s.device_id
        ? html`<${Link} to=${`/agents${query({ agent: s.agent || "" })}`}>${s.device_id}<//>`
        : "—"}</dd></div>
      <div><dt>Agent</dt><dd>${s.agent || "—"}</dd></div>
      <div><dt>Requestor</dt><dd>${s.requestor}</dd></div>
      <div><dt>Requested</dt><dd><${Time} at=${s.created_at} now=${now} /></dd></div>
      <div><dt>Started</dt><dd><${Time} at=${s.started_at} now=${now} /></dd></div>
      <div><dt>Ended</dt><dd><${Time} at=${s.ended_at} now=${now} /></dd></div>
      <div><dt>Duration</dt><dd>${duration(elapsed(s.started_at, s.ended_at, now)) || "—"}</dd></div>
      <div><dt>Commands</dt><dd data-testid="command-count">${s.commands}</dd></div>
      <div><dt>Last command</dt><dd><${Time} at=${s.last_command_at} now=${now} /></dd></div>
      <div><dt>Idle limit</dt><dd>${duration(s.idle_timeout)}${s.idle_expires_at
        ? html` <span class="muted small">(ends <${Time} at=${s.idle_expires_at} now=${now} /> without a command)</span>`
        : null}</dd></div>
      <div><dt>Hub</dt><dd>${s.hub || "—"}</dd></div>
      <div><dt>Node</dt><dd class="mono small">${s.node_url || "—"}</dd></div>
    </dl></section>
    <div class="grid-2">
      <section class="panel"><h2>Capabilities given</h2>${s.capabilities
        ? html`<pre class="payload">${JSON.stringify(s.capabilities, null, 2)}</pre>`
        : html`<p class="muted">None yet: the driver gives them when the session starts.</p>`}</section>
      <section class="panel"><h2>Asked for</h2><pre class="payload">${JSON.stringify(s.requested, null, 2)}</pre></section>
    </div>
    <section class="panel" data-testid="commands"><div class="panel-head"><h2>Commands</h2>
      <span class="muted small">${s.commands} in all</span></div>
      <${Commands} commands=${commands} start=${s.started_at} total=${s.commands} /></section>
    ${s.has_screenshot
      ? html`<section class="panel"><h2>Screenshot at the end</h2>
          <img class="shot" src=${`/api/v1/sessions/${s.id}/screenshot`} alt=${`The screen of session ${s.id} as it ended`} /></section>`
      : null}`;
}
