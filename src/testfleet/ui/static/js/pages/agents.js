// Agents and devices: the inventory as agents report it, live; who holds each busy device.
import { html, useState } from "../html.js";
import { api } from "../api.js";
import { Chips, Empty, ErrorNote, State, Time, useLive, useNow } from "../components.js";
import { Link } from "../router.js";

function matches(text, ...values) {
  const needle = text.trim().toLowerCase();
  return !needle || values.some((v) => JSON.stringify(v ?? "").toLowerCase().includes(needle));
}

function Agents({ agents, now }) {
  return html`<div class="table-wrap"><table data-testid="agents-table">
    <thead><tr><th>Agent</th><th>State</th><th class="num">Devices</th><th>Labels</th>
      <th class="hide-narrow">Version</th><th class="hide-narrow">Hub</th><th>Connected</th><th>Last heard</th></tr></thead>
    <tbody>${agents.map(
      (a) => html`<tr data-agent=${a.name}>
        <td><strong>${a.name}</strong></td>
        <td><${State} state=${a.state} /></td>
        <td class="num">${a.devices}</td>
        <td><${Chips} values=${a.labels} /></td>
        <td class="hide-narrow mono">${a.version}</td>
        <td class="hide-narrow">${a.hub || "—"}</td>
        <td><${Time} at=${a.connected_at} now=${now} /></td>
        <td><${Time} at=${a.last_seen} now=${now} /></td>
      </tr>`,
    )}</tbody>
  </table></div>`;
}

function Devices({ devices, now }) {
  return html`<div class="table-wrap"><table data-testid="devices-table">
    <thead><tr><th>Device</th><th>Agent</th><th>State</th><th>Held by</th><th>Capabilities</th><th>Labels</th></tr></thead>
    <tbody>${devices.map(
      (d) => html`<tr data-device=${d.device_id}>
        <td><strong>${d.name}</strong> <span class="muted small">${d.kind}</span></td>
        <td>${d.agent}</td>
        <td><${State} state=${d.state} /></td>
        <td>${d.holder_job_id
          ? html`<${Link} to=${`/jobs/${d.holder_job_id}`}>job #${d.holder_job_id}<//>
              ${d.claimed_at ? html`<span class="muted small"> since <${Time} at=${d.claimed_at} now=${now} /></span>` : null}`
          : html`<span class="muted">—</span>`}</td>
        <td><${Chips} values=${d.capabilities} /></td>
        <td><${Chips} values=${d.labels} /></td>
      </tr>`,
    )}</tbody>
  </table></div>`;
}

export default function Inventory() {
  const now = useNow();
  const [filter, setFilter] = useState("");
  const { data, error } = useLive(
    (signal) => Promise.all([api("/agents", { signal }), api("/devices", { signal })]),
    ["inventory"],
    [],
  );
  const head = html`<div class="page-head"><h1>Agents and devices</h1>
    <input type="search" aria-label="Filter agents and devices" placeholder="Filter: name, label, state…"
      value=${filter} onInput=${(e) => setFilter(e.target.value)} /></div>`;
  if (!data) return html`${head}<${ErrorNote} error=${error} what="The inventory cannot be read" />`;
  const [{ agents }, { devices }] = data;
  if (!agents.length) {
    return html`${head}<div class="panel"><${Empty} title="No agent has connected yet">
      <p>Start one on each lab machine: <code>testfleet agent --hub ${location.origin} --label pool=a</code>.
        Agents and their devices appear here as they connect.</p><//></div>`;
  }
  const shownAgents = agents.filter((a) => matches(filter, a.name, a.state, a.labels, a.version));
  const shownDevices = devices.filter((d) =>
    matches(filter, d.name, d.agent, d.state, d.kind, d.labels, d.capabilities),
  );
  const online = agents.filter((a) => a.state === "online").length;
  const busy = devices.filter((d) => d.state === "busy").length;
  return html`${head}
    <${ErrorNote} error=${error} what="Not current" />
    <section class="panel"><div class="panel-head"><h2>Agents</h2>
      <span class="muted small">${online} of ${agents.length} online</span></div>
      ${shownAgents.length ? html`<${Agents} agents=${shownAgents} now=${now} />` : html`<p class="muted">No agent matches the filter.</p>`}
    </section>
    <section class="panel"><div class="panel-head"><h2>Devices</h2>
      <span class="muted small">${busy} of ${devices.length} busy</span></div>
      ${shownDevices.length ? html`<${Devices} devices=${shownDevices} now=${now} />` : html`<p class="muted">No device matches the filter.</p>`}
    </section>`;
}
