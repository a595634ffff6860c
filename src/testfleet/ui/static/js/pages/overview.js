// Overview: the lab at a glance (agents, devices, jobs, throughput), updating live.
import { html } from "../html.js";
import { api, query } from "../api.js";
import { Empty, ErrorNote, State, Time, useLive, useNow } from "../components.js";
import { DurationLine, Meter, OutcomeBars } from "../charts.js";
import { Link } from "../router.js";
import { duration, elapsed } from "../format.js";

function Card({ label, value, children, testid }) {
  return html`<section class="card" data-testid=${testid}>
    <div class="card-label">${label}</div>
    <div class="card-value">${value}</div>
    ${children}
  </section>`;
}

const Part = ({ n, label, testid }) => html`<span><b data-testid=${testid}>${n}</b> ${label}</span>`;

function Counts({ o }) {
  const finished = o.finished_last_hour;
  const lastHour = finished.completed + finished.failed + finished.cancelled;
  return html`<div class="cards">
    <${Card} label="Agents online" value=${o.agents.online} testid="agents-card">
      <div class="card-parts"><${Part} n=${o.agents.online} label="online" testid="agents-online" />
        <${Part} n=${o.agents.offline} label="offline" testid="agents-offline" /></div>
    <//>
    <${Card} label="Devices free" value=${o.devices.free} testid="devices-card">
      <div class="card-parts">
        <${Part} n=${o.devices.free} label="free" testid="devices-free" />
        <${Part} n=${o.devices.busy} label="busy" testid="devices-busy" />
        <${Part} n=${o.devices.offline} label="offline" testid="devices-offline" /></div>
      <${Meter} label="Devices by state"
        parts=${["free", "busy", "offline"].map((key) => ({ key, value: o.devices[key] }))} />
    <//>
    <${Card} label="Jobs running" value=${o.jobs.running} testid="jobs-card">
      <div class="card-parts"><${Part} n=${o.jobs.running} label="running" testid="jobs-running" />
        <${Part} n=${o.jobs.queued} label="queued" testid="jobs-queued" />
        ${o.jobs.cancelling ? html`<${Part} n=${o.jobs.cancelling} label="cancelling" />` : null}</div>
    <//>
    <${Card} label="Finished in the last hour" value=${lastHour} testid="finished-card">
      <div class="card-parts">
        <${Part} n=${finished.completed} label="completed" testid="finished-completed" />
        <${Part} n=${finished.failed} label="failed" testid="finished-failed" />
        <${Part} n=${finished.cancelled} label="cancelled" testid="finished-cancelled" /></div>
      <${Meter} label="Jobs finished in the last hour by outcome"
        parts=${["completed", "failed", "cancelled"].map((key) => ({ key, value: finished[key] }))} />
    <//>
  </div>`;
}

function Legend() {
  return html`<span class="legend">
    ${["completed", "failed", "cancelled"].map((k) => html`<span><i class=${`fill-${k}`}></i>${k}</span>`)}
  </span>`;
}

function Recent({ jobs, now }) {
  if (!jobs.length) {
    return html`<${Empty} title="No jobs yet">
      <p>Start one from the <${Link} to="/jobs">Jobs<//> page, or with
        <code>testfleet job start examples/jobs/smoke.yaml</code>.</p>
    <//>`;
  }
  return html`<div class="table-wrap"><table>
    <thead><tr><th>Job</th><th>State</th><th>Name</th><th class="hide-narrow">Requestor</th><th>Created</th><th class="num">Duration</th></tr></thead>
    <tbody>${jobs.map(
      (job) => html`<tr>
        <td><${Link} to=${`/jobs/${job.job_id}`}>#${job.job_id}<//></td>
        <td><${State} state=${job.state} /></td>
        <td>${job.name}</td>
        <td class="hide-narrow">${job.requestor}</td>
        <td><${Time} at=${job.created_at} now=${now} /></td>
        <td class="num">${duration(elapsed(job.started_at, job.ended_at, now))}</td>
      </tr>`,
    )}</tbody>
  </table></div>`;
}

export default function Overview() {
  const now = useNow();
  const { data, error } = useLive(
    (signal) =>
      Promise.all([
        api("/overview", { signal }),
        api(`/jobs${query({ limit: 8 })}`, { signal }),
      ]),
    ["jobs", "inventory"],
    [],
    1000,
  );
  if (!data) return html`<${ErrorNote} error=${error} what="The overview cannot be read" />${error ? null : html`<p class="muted loading">Loading…</p>`}`;
  const [o, recent] = data;
  return html`<div class="page-head"><h1>Overview</h1>
      <span class="muted small">as of <${Time} at=${o.at} now=${now} /></span></div>
    <${ErrorNote} error=${error} what="Not current" />
    ${o.agents.online + o.agents.offline === 0
      ? html`<div class="panel"><${Empty} title="No agent has connected yet">
          <p>Run an agent on each lab machine: <code>testfleet agent --hub ${location.origin}</code></p><//></div>`
      : null}
    <${Counts} o=${o} />
    <div class="grid-2">
      <section class="panel"><div class="panel-head"><h2>Jobs finished per hour</h2><${Legend} /></div>
        <${OutcomeBars} points=${o.throughput} /></section>
      <section class="panel"><div class="panel-head"><h2>Mean run time</h2><span class="muted small">per hour, last 24 h</span></div>
        <${DurationLine} points=${o.throughput} /></section>
    </div>
    <section class="panel"><div class="panel-head"><h2>Latest jobs</h2><${Link} to="/jobs">All jobs →<//></div>
      <${Recent} jobs=${recent.jobs} now=${now} /></section>`;
}
