// A plan task: a run's groups with their instances' states and outcomes, the sync service's
// states (barriers) and topics, the log, the outputs to download; or a build's result and
// log. Live: read again when plan tasks change, and every second while the task runs.
import { html, useEffect } from "../html.js";
import { api, daemon, query } from "../api.js";
import { Chips, Empty, ErrorNote, State, Time, useLive, useNow } from "../components.js";
import { finishedAt, Outcomes, TaskState } from "../plan-parts.js";
import { Link } from "../router.js";
import { duration, elapsed, localTime } from "../format.js";

const EVERY = 1000;
const LOG_SHOWN = 200_000;

function Instances({ instances, now }) {
  return html`<div class="table-wrap"><table class="instances">
    <thead><tr><th class="num">#</th><th class="num">In group</th><th>State</th><th>Agent</th>
      <th class="num">Exit</th><th>Error</th><th class="num">Ran</th></tr></thead>
    <tbody>${instances.map(
      (i) => html`<tr key=${i.seq} data-instance=${i.seq}>
        <td class="num">${i.seq}</td>
        <td class="num">${i.group_seq}</td>
        <td><${State} state=${i.state} /></td>
        <td>${i.agent || "—"}</td>
        <td class="num">${i.exit_code ?? ""}</td>
        <td class="case-message">${i.error ? html`<span title=${i.error}>${i.error.split("\n").filter(Boolean).at(-1)}</span>` : ""}</td>
        <td class="num">${duration(elapsed(i.started_at, i.ended_at, now))}</td>
      </tr>`,
    )}</tbody></table></div>`;
}

function Groups({ groups, now }) {
  return groups.map((g) => {
    const counts = {};
    g.instances.forEach((i) => (counts[i.state] = (counts[i.state] || 0) + 1));
    return html`<section class="panel" data-group=${g.id} aria-labelledby=${`group-${g.id}`}>
      <div class="panel-head"><h2 id=${`group-${g.id}`}>Group ${g.id}</h2>
        <span class=${`badge keep-case state-${g.ok === g.count ? "success" : "failure"}`} data-testid="group-ok">${g.ok}/${g.count} ok</span></div>
      <p class="small">${Object.entries(counts).map(([state, n]) => html`<${State} state=${state} label=${`${n} ${state}`} /> `)}
        ${Object.keys(g.params).length ? html` <span class="muted">params</span> <${Chips} values=${g.params} />` : null}</p>
      ${g.instances.length
        ? html`<${Instances} instances=${g.instances} now=${now} />`
        : html`<p class="muted">No instance placed yet.</p>`}
    </section>`;
  });
}

function Sync({ sync }) {
  if (!sync) return null;
  if (!sync.states.length && !sync.topics.length) {
    return html`<p class="muted">No barrier or topic in use${sync.run_id ? " (a finished run's state is forgotten)" : ""}.</p>`;
  }
  return html`<div class="grid-2">
    <div><h3>States (barriers)</h3>${sync.states.length
      ? html`<table data-testid="sync-states"><thead><tr><th>State</th><th class="num">Entered</th><th>Waiting for</th></tr></thead>
          <tbody>${sync.states.map((s) => html`<tr key=${s.name} data-state=${s.name}><td><code>${s.name}</code></td><td class="num">${s.count}</td>
            <td>${Object.entries(s.waiting).map(([target, n]) => `${n} waiting for ${target}`).join(", ") || "—"}</td></tr>`)}</tbody></table>`
      : html`<p class="muted">none</p>`}</div>
    <div><h3>Topics</h3>${sync.topics.length
      ? html`<table data-testid="sync-topics"><thead><tr><th>Topic</th><th class="num">Messages</th><th class="num">Subscribers</th></tr></thead>
          <tbody>${sync.topics.map((t) => html`<tr key=${t.name} data-topic=${t.name}><td><code>${t.name}</code></td><td class="num">${t.messages}</td><td class="num">${t.subscribers}</td></tr>`)}</tbody></table>`
      : html`<p class="muted">none</p>`}</div>
  </div>`;
}

async function read(id, signal) {
  const task = await daemon("/status", { method: "POST", body: { task_id: id }, signal });
  const log = daemon("/logs", { method: "POST", body: { task_id: id }, signal, text: true });
  if (task.type !== "run") return { task, log: await log };
  // One Promise.all for the log too: an aborted read must not leave a rejection unhandled.
  const [run, sync, text] = await Promise.all([
    api(`/plan-runs/${encodeURIComponent(id)}`, { signal }),
    api(`/plan-runs/${encodeURIComponent(id)}/sync`, { signal }).catch(() => null),
    log,
  ]);
  return { task, run, sync, log: text };
}

export default function PlanTask({ params }) {
  const id = params.id;
  const now = useNow();
  const { data, error, refresh } = useLive((signal) => read(id, signal), ["plans"], [id]);
  const running = data && !finishedAt(data.task);
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(refresh, EVERY);
    return () => clearInterval(timer);
  }, [running]);
  if (!data) {
    return error?.status === 404 || error?.status === 422
      ? html`<${Empty} title=${`There is no plan task ${id}`}><p><${Link} to="/plans">All plans<//></p><//>`
      : html`<${ErrorNote} error=${error} what="The task cannot be read" />${error ? null : html`<p class="muted loading">Loading…</p>`}`;
  }
  const { task, run, sync, log } = data;
  const ended = finishedAt(task);
  const shown = log.length > LOG_SHOWN ? log.slice(-LOG_SHOWN) : log;
  return html`<div class="page-head">
      <h1><span class="muted">${task.type === "run" ? "Run" : "Build"}</span> <span class="mono">${task.id}</span></h1>
      <${TaskState} task=${task} />
      <span class="sub muted">${task.plan} / ${task.case}</span>
    </div>
    <${ErrorNote} error=${error} what="Not current" />
    ${task.error ? html`<div class="note note-error" role="alert">${task.error}</div>` : null}
    <section class="panel"><dl class="facts" data-testid="task-facts">
      <div><dt>Plan</dt><dd><${Link} to=${`/plans${query({ plan: task.plan })}`}>${task.plan}<//></dd></div>
      <div><dt>Case</dt><dd><code>${task.case}</code></dd></div>
      <div><dt>Builder</dt><dd>${task.builder}</dd></div>
      <div><dt>Runner</dt><dd>${task.runner}</dd></div>
      <div><dt>Requestor</dt><dd>${task.requestor}</dd></div>
      <div><dt>Created</dt><dd><${Time} at=${task.created} now=${now} /></dd></div>
      <div><dt>Duration</dt><dd>${duration(elapsed(task.created, ended, now))}</dd></div>
      ${task.job_id ? html`<div><dt>Job</dt><dd><${Link} to=${`/jobs/${task.job_id}`}>#${task.job_id}<//> <span class="muted small">(its live log, Stop)</span></dd></div>` : null}
      ${run ? html`<div><dt>Outcomes</dt><dd data-testid="outcomes"><${Outcomes} outcomes=${task.result?.outcomes} /></dd></div>` : null}
      ${task.result?.artifact ? html`<div><dt>Artifact</dt><dd class="mono small">${task.result.artifact}${task.result.cached ? " (cached)" : ""}</dd></div>` : null}
    </dl>
    <ol class="states-line" aria-label="States">${task.states.map(
      (s) => html`<li><${State} state=${s.state} /> <span class="muted small" title=${localTime(s.created)}><${Time} at=${s.created} now=${now} /></span></li>`,
    )}</ol></section>
    ${run
      ? html`<${Groups} groups=${run.groups} now=${now} />
        <section class="panel" aria-labelledby="sync-h"><div class="panel-head"><h2 id="sync-h">Sync service</h2>
          <span class="muted small">${ended ? "as the run left it" : "live"}</span></div><${Sync} sync=${sync} /></section>
        <section class="panel"><div class="panel-head"><h2>Outputs</h2></div>
          <p>${ended
            ? html`<a class="button" href=${`/api/v1/plan-runs/${encodeURIComponent(task.id)}/outputs`} download=${`${task.id}.tgz`}>Download outputs (.tgz)</a>`
            : html`<span class="muted">Each agent sends its instances' outputs when they have all ended.</span>`}
            <span class="muted small"> Laid out <code>${`${task.id}/<group>/<seq>/`}</code>: run.out, metrics.out, stdout.log, stderr.log, outcome.json.</span></p>
        </section>`
      : null}
    <section class="panel log-panel"><div class="panel-head"><h2>Log</h2></div>
      ${log
        ? html`<pre class="log" data-testid="task-log" tabindex="0" aria-label="The task's log">${shown}</pre>`
        : html`<p class="muted">Nothing logged yet.</p>`}
    </section>`;
}
