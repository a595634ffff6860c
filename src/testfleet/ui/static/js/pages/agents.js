// Agents and devices: the inventory as agents report it, live, a page at a time (by the
// API's cursor), filtered by the hub; who holds each busy device (a job or a gateway
// session) and since when.
import { html } from "../html.js";
import { api, query } from "../api.js";
import { Chips, Empty, ErrorNote, State, Time, useLive, useNow } from "../components.js";
import { FilterBar, valuesOf } from "../filter-bar.js";
import { Pager } from "../pager.js";
import { Link, navigate } from "../router.js";
import { plural } from "../format.js";

const PAGE = 50;
const AGENT_KEYS = ["agent_state", "agent_label"];
const DEVICE_KEYS = ["state", "kind", "label", "agent"];
const KEYS = [...AGENT_KEYS, ...DEVICE_KEYS, "agents_cursor", "devices_cursor"];
const AGENT_FIELDS = [
  { key: "agent_state", label: "State", options: [["", "Any state"], ["online", "online"], ["offline", "offline"]] },
  { key: "agent_label", label: "Label", placeholder: "pool=a" },
];
const DEVICE_FIELDS = [
  { key: "state", label: "State", options: [["", "Any state"], ["free", "free"], ["busy", "busy"], ["offline", "offline"]] },
  { key: "kind", label: "Kind", placeholder: "browser" },
  { key: "label", label: "Label", placeholder: "pool=a" },
  { key: "agent", label: "Agent", placeholder: "lab-1" },
];

/** The API paths of the page's address: agents, then devices. */
export function inventoryPaths(search) {
  const v = valuesOf(search, KEYS);
  return [
    `/agents${query({ state: v.agent_state, label: v.agent_label, limit: PAGE, cursor: v.agents_cursor })}`,
    `/devices${query({ state: v.state, kind: v.kind, label: v.label, agent: v.agent, limit: PAGE, cursor: v.devices_cursor })}`,
  ];
}

function Agents({ agents, now }) {
  return html`<div class="table-wrap"><table data-testid="agents-table">
    <thead><tr><th>Agent</th><th>State</th><th class="num">Devices</th><th>Labels</th>
      <th class="hide-narrow">Version</th><th class="hide-narrow">Hub</th><th>Connected</th><th>Last heard</th></tr></thead>
    <tbody>${agents.map(
      (a) => html`<tr key=${a.name} data-agent=${a.name}>
        <td><strong>${a.name}</strong></td>
        <td><${State} state=${a.state} /></td>
        <td class="num"><${Link} to=${`/agents${query({ agent: a.name })}`} aria-label=${`Devices of ${a.name}`}>${a.devices}<//></td>
        <td><${Chips} values=${a.labels} /></td>
        <td class="hide-narrow mono">${a.version}</td>
        <td class="hide-narrow">${a.hub || "—"}</td>
        <td><${Time} at=${a.connected_at} now=${now} /></td>
        <td><${Time} at=${a.last_seen} now=${now} /></td>
      </tr>`,
    )}</tbody>
  </table></div>`;
}

function Holder({ device: d, now }) {
  const since = d.claimed_at
    ? html`<span class="muted small"> since <${Time} at=${d.claimed_at} now=${now} /></span>`
    : null;
  if (d.holder_session_id) return html`<${Link} to=${`/sessions/${d.holder_session_id}`}>session #${d.holder_session_id}<//>${since}`;
  if (d.holder_job_id) return html`<${Link} to=${`/jobs/${d.holder_job_id}`}>job #${d.holder_job_id}<//>${since}`;
  return html`<span class="muted">—</span>`;
}

function Devices({ devices, now }) {
  return html`<div class="table-wrap"><table data-testid="devices-table">
    <thead><tr><th>Device</th><th>Agent</th><th>State</th><th>Held by</th><th>Capabilities</th><th>Labels</th></tr></thead>
    <tbody>${devices.map(
      (d) => html`<tr key=${d.device_id} data-device=${d.device_id}>
        <td><strong>${d.name}</strong> <span class="muted small">${d.kind}</span></td>
        <td>${d.agent}</td>
        <td><${State} state=${d.state} /></td>
        <td><${Holder} device=${d} now=${now} /></td>
        <td><${Chips} values=${d.capabilities} /></td>
        <td><${Chips} values=${d.labels} /></td>
      </tr>`,
    )}</tbody>
  </table></div>`;
}

/** "3 online, 1 offline" from counts per state. */
const counted = (counts, order) =>
  order.filter((state) => counts?.[state]).map((state) => `${counts[state]} ${state}`).join(", ") || "none";

export default function Inventory({ query: search }) {
  const now = useNow();
  const values = valuesOf(search, KEYS);
  const [agentsPath, devicesPath] = inventoryPaths(search);
  const show = (changes) => navigate(`/agents${query({ ...values, ...changes })}`, { replace: true });
  const { data, error } = useLive(
    (signal) =>
      Promise.allSettled([api(agentsPath, { signal }), api(devicesPath, { signal }), api("/overview", { signal })]),
    ["inventory"],
    [agentsPath, devicesPath],
  );
  const head = html`<div class="page-head"><h1>Agents and devices</h1></div>`;
  if (!data) return html`${head}<${ErrorNote} error=${error} what="The inventory cannot be read" />`;
  const [agents, devices, overview] = data.map((result) => (result.status === "fulfilled" ? result.value : null));
  const [agentsError, devicesError] = data.map((result) => result.reason);
  const counts = overview || {};
  if (overview && !Object.values(overview.agents).some(Boolean)) {
    return html`${head}<div class="panel"><${Empty} title="No agent has connected yet">
      <p>Start one on each lab machine: <code>testfleet agent --hub ${location.origin} --label pool=a</code>.
        Agents and their devices appear here as they connect.</p><//></div>`;
  }
  const agentFiltered = AGENT_KEYS.some((k) => values[k]);
  const deviceFiltered = DEVICE_KEYS.some((k) => values[k]);
  return html`${head}
    <${ErrorNote} error=${error} what="Not current" />
    <section class="panel" aria-labelledby="agents-h"><div class="panel-head"><h2 id="agents-h">Agents</h2>
      <span class="muted small" data-testid="agent-counts">${counted(counts.agents, ["online", "offline"])}</span></div>
      <${FilterBar} id="fa" label="Filter agents" fields=${AGENT_FIELDS} values=${values}
        apply=${(v) => show({ ...v, agents_cursor: "" })} />
      <${ErrorNote} error=${agentsError} what="The agents cannot be listed" />
      ${agents?.agents.length
        ? html`<${Agents} agents=${agents.agents} now=${now} />`
        : agents ? html`<p class="muted">${agentFiltered || values.agents_cursor ? "No agent matches the filters." : "No agent yet."}</p>` : null}
      <${Pager} name="agents" what="agents" cursor=${values.agents_cursor} next=${agents?.next_cursor}
        go=${(c) => navigate(`/agents${query({ ...values, agents_cursor: c })}`)} />
    </section>
    <section class="panel" aria-labelledby="devices-h"><div class="panel-head"><h2 id="devices-h">Devices</h2>
      <span class="muted small" data-testid="device-counts">${counted(counts.devices, ["free", "busy", "offline"])}</span></div>
      <${FilterBar} id="fd" label="Filter devices" fields=${DEVICE_FIELDS} values=${values}
        apply=${(v) => show({ ...v, devices_cursor: "" })} />
      <${ErrorNote} error=${devicesError} what="The devices cannot be listed" />
      ${devices?.devices.length
        ? html`<${Devices} devices=${devices.devices} now=${now} />
            <p class="muted small">${plural(devices.devices.length, "device")} on this page${devices.next_cursor ? "; more on the next" : ""}.</p>`
        : devices ? html`<p class="muted">${deviceFiltered || values.devices_cursor ? "No device matches the filters." : "No device yet: agents report theirs as they find them."}</p>` : null}
      <${Pager} name="devices" what="devices" cursor=${values.devices_cursor} next=${devices?.next_cursor}
        go=${(c) => navigate(`/agents${query({ ...values, devices_cursor: c })}`)} />
    </section>`;
}
