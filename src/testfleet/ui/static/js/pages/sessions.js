// Sessions: the WebDriver and Appium sessions driven through the hub's gateway, live ones
// first (who holds which device, since when, how many commands), and their history; kill a
// stuck one (operators).
import { html, useState } from "../html.js";
import { api, query } from "../api.js";
import { canOperate, Confirm, Empty, ErrorNote, State, Time, useLive, useNow } from "../components.js";
import { FilterBar, valuesOf } from "../filter-bar.js";
import { Pager } from "../pager.js";
import { Link, navigate } from "../router.js";
import { duration, elapsed } from "../format.js";

const PAGE = 50;
export const LIVE = ["queued", "creating", "active", "ending", "lost"];
const KEYS = ["state", "requestor", "agent", "device"];
const FIELDS = [
  {
    key: "state",
    label: "State",
    options: [["", "Live"], ["all", "Any state"], ...["active", "queued", "creating", "ending", "lost", "ended", "failed"].map((s) => [s, s])],
  },
  { key: "requestor", label: "Requestor", placeholder: "alice" },
  { key: "agent", label: "Agent", placeholder: "lab-1" },
  { key: "device", label: "Device", placeholder: "lab-1:chromium-0" },
];

/** The API path of the sessions page's address. */
export function sessionsPath(search) {
  const values = valuesOf(search, KEYS);
  return `/sessions${query({ ...values, state: values.state || "live", limit: PAGE, cursor: search.get("cursor") || "" })}`;
}

const go = (values, cursor = "") => navigate(`/sessions${query({ ...values, cursor })}`, { replace: !cursor });

/** The capabilities a client asked for, in a few words ("chrome on linux"). */
export function asked(session) {
  const caps = session.capabilities || session.requested?.alwaysMatch || session.requested || {};
  const what = caps.browserName || caps["appium:deviceName"] || caps["appium:automationName"] || "";
  const where = caps.platformName || "";
  return [what, where].filter(Boolean).join(" on ") || "any device";
}

/** Kill a live session (operators), asked first. */
export function KillSession({ session, small, onDone }) {
  const [asking, setAsking] = useState(false);
  if (!LIVE.includes(session.state)) return null;
  return html`<button type="button" class=${`button danger${small ? " small" : ""}`} onClick=${() => setAsking(true)}
      aria-label=${`Kill session ${session.id}`}>Kill</button>
    ${asking
      ? html`<${Confirm} title=${`Kill session ${session.id}?`} action="Kill session"
          onClose=${() => setAsking(false)}
          onConfirm=${async () => (await api(`/sessions/${session.id}`, { method: "DELETE" }), onDone?.())}>
          <p>The driver session is ended on its node and ${session.device_id ? html`device <b>${session.device_id}</b> is` : "its device is"}
            freed. The client's next command is answered <code>invalid session id</code>.</p><//>`
      : null}`;
}

function Rows({ sessions, now, me, refresh }) {
  const operator = canOperate(me);
  return html`<div class="table-wrap"><table data-testid="sessions-table">
    <thead><tr><th>Session</th><th>State</th><th>Device</th><th class="hide-narrow">Agent</th><th>Requestor</th>
      <th>Since</th><th>Last command</th><th class="num">Commands</th><th class="num hide-narrow">Duration</th>
      ${operator ? html`<th><span class="skip">Actions</span></th>` : null}</tr></thead>
    <tbody>${sessions.map(
      (s) => html`<tr key=${s.id} data-session=${s.id}>
        <td><${Link} to=${`/sessions/${s.id}`}>#${s.id}<//> <span class="muted small">${asked(s)}</span></td>
        <td><${State} state=${s.state} /></td>
        <td>${s.device_id || html`<span class="muted">${s.state === "queued" ? "waiting" : "—"}</span>`}</td>
        <td class="hide-narrow">${s.agent || "—"}</td>
        <td>${s.requestor}</td>
        <td><${Time} at=${s.started_at || s.created_at} now=${now} /></td>
        <td><${Time} at=${s.last_command_at} now=${now} /></td>
        <td class="num" data-testid="commands">${s.commands}</td>
        <td class="num hide-narrow">${duration(elapsed(s.started_at, s.ended_at, now))}</td>
        ${operator ? html`<td class="actions"><${KillSession} session=${s} small onDone=${refresh} /></td>` : null}
      </tr>`,
    )}</tbody>
  </table></div>`;
}

export default function Sessions({ query: search, me }) {
  const now = useNow();
  const values = valuesOf(search, KEYS);
  const cursor = search.get("cursor") || "";
  const path = sessionsPath(search);
  const { data, error, refresh } = useLive((signal) => api(path, { signal }), ["sessions", "inventory"], [path]);
  const filtered = KEYS.some((key) => values[key]);
  return html`<div class="page-head"><h1>Sessions</h1>
      <span class="sub muted">WebDriver and Appium sessions through the hub</span></div>
    <section class="panel">
      <${FilterBar} id="s" label="Filter sessions" fields=${FIELDS} values=${values} apply=${(v) => go(v)} />
      <${ErrorNote} error=${error} what="The sessions cannot be listed" />
      ${!data
        ? null
        : data.sessions.length
          ? html`<${Rows} sessions=${data.sessions} now=${now} me=${me} refresh=${refresh} />`
          : filtered || cursor
            ? html`<${Empty} title="No session matches these filters">
                <p>Change or clear the filters${values.state ? "" : ", or choose Any state to see ended sessions"}.</p><//>`
            : html`<${Empty} title="No live session">
                <p>Point a Selenium or Appium client at <code>${location.origin}/wd/hub</code>; its session
                  appears here with the device it got. Choose <b>Any state</b> to see ended sessions.</p><//>`}
      <${Pager} name="sessions" what="sessions" cursor=${cursor} next=${data?.next_cursor} go=${(c) => go(values, c)} />
    </section>`;
}
