// Test plans: the plans the hub knows (their cases, instance bounds and parameters; Run for
// operators) and their build and run tasks, newest first, with state and outcomes per group,
// live.
import { html, useState } from "../html.js";
import { api, query } from "../api.js";
import { canOperate, Empty, ErrorNote, Time, useLive, useNow } from "../components.js";
import { FilterBar, valuesOf } from "../filter-bar.js";
import { finishedAt, Outcomes, RunPlan, TaskState } from "../plan-parts.js";
import { Link, navigate } from "../router.js";
import { bytes, duration, elapsed, plural } from "../format.js";

const KEYS = ["type", "plan", "state"];
const LIMIT = 100;

function Params({ params }) {
  const entries = Object.entries(params || {});
  if (!entries.length) return html`<span class="muted">no parameters</span>`;
  return html`<span class="chips">${entries.map(
    ([name, spec]) => html`<span class="chip" title=${spec.desc || ""}><span class="chip-key">${name}</span>: ${spec.type}${spec.default !== null && spec.default !== undefined ? ` = ${JSON.stringify(spec.default)}` : ""}</span>`,
  )}</span>`;
}

function Catalog({ plans, now, me, onRun }) {
  return html`<div class="table-wrap"><table data-testid="plans-table">
    <thead><tr><th>Plan</th><th>Case</th><th class="num">Instances</th><th>Parameters</th>
      <th class="hide-narrow">Builder, runner</th><th class="hide-narrow">Imported</th>
      ${canOperate(me) ? html`<th><span class="skip">Actions</span></th>` : null}</tr></thead>
    ${plans.map(
      (plan) => html`<tbody data-plan=${plan.name}>${plan.manifest.testcases.map(
        (tc, i) => html`<tr key=${tc.name} data-case=${tc.name}>
          <td>${i === 0
            ? html`<strong>${plan.name}</strong><br /><span class="muted small">${bytes(plan.source_size)}</span>`
            : null}</td>
          <td><code>${tc.name}</code></td>
          <td class="num">${tc.instances.min}–${tc.instances.max}<span class="muted small"> (${tc.instances.default ?? tc.instances.min})</span></td>
          <td><${Params} params=${tc.params} /></td>
          <td class="hide-narrow small">${i === 0 ? html`${plan.manifest.defaults.builder}<br />${plan.manifest.defaults.runner}` : null}</td>
          <td class="hide-narrow">${i === 0 ? html`<${Time} at=${plan.imported_at} now=${now} />` : null}</td>
          ${canOperate(me)
            ? html`<td class="actions"><button type="button" class="button small" onClick=${() => onRun(plan, tc)}
                aria-label=${`Run ${plan.name} ${tc.name}`}>Run…</button></td>`
            : null}
        </tr>`,
      )}</tbody>`,
    )}
  </table></div>`;
}

function Tasks({ tasks, now }) {
  return html`<div class="table-wrap"><table data-testid="tasks-table">
    <thead><tr><th>Task</th><th>Type</th><th>State</th><th>Plan / case</th><th>Outcomes</th>
      <th class="hide-narrow">Runner</th><th class="hide-narrow">Requestor</th><th>Created</th><th class="num">Duration</th></tr></thead>
    <tbody>${tasks.map(
      (t) => html`<tr key=${t.id} data-task=${t.id}>
        <td><${Link} to=${`/plans/tasks/${t.id}`} class="mono">${t.id}<//></td>
        <td>${t.type}</td>
        <td><${TaskState} task=${t} /></td>
        <td>${t.plan} / <code>${t.case}</code></td>
        <td>${t.type === "run" ? html`<${Outcomes} outcomes=${t.result?.outcomes} />` : t.result?.cached ? html`<span class="muted small">cached</span>` : null}</td>
        <td class="hide-narrow">${t.runner}</td>
        <td class="hide-narrow">${t.requestor}</td>
        <td><${Time} at=${t.created} now=${now} /></td>
        <td class="num">${duration(elapsed(t.created, finishedAt(t), now))}</td>
      </tr>`,
    )}</tbody>
  </table></div>`;
}

const FIELDS = (plans) => [
  { key: "type", label: "Type", options: [["", "Runs and builds"], ["run", "Runs"], ["build", "Builds"]] },
  { key: "plan", label: "Plan", options: [["", "Any plan"], ...plans.map((p) => [p.name, p.name])] },
  {
    key: "state",
    label: "State",
    options: [["", "Any state"], ...["scheduled", "processing", "complete", "canceled"].map((s) => [s, s])],
  },
];

export default function Plans({ query: search, me }) {
  const now = useNow();
  const [running, setRunning] = useState(null);
  const values = valuesOf(search, KEYS);
  const tasksPath = `/plan-tasks${query({ ...values, limit: LIMIT })}`;
  const { data, error } = useLive(
    (signal) => Promise.all([api("/plans", { signal }), api(tasksPath, { signal })]),
    ["plans"],
    [tasksPath],
  );
  const head = html`<div class="page-head"><h1>Test plans</h1>
    <span class="sub muted">Testground-style plans, their builds and runs</span></div>`;
  if (!data) return html`${head}<${ErrorNote} error=${error} what="The plans cannot be read" />`;
  const [{ plans }, { tasks }] = data;
  const filtered = KEYS.some((k) => values[k]);
  return html`${head}
    <${ErrorNote} error=${error} what="Not current" />
    ${running ? html`<${RunPlan} plan=${running[0]} testcase=${running[1]} me=${me} onClose=${() => setRunning(null)} />` : null}
    <section class="panel" aria-labelledby="plans-h"><div class="panel-head"><h2 id="plans-h">Plans</h2>
      <span class="muted small">${plural(plans.length, "plan")}</span></div>
      ${plans.length
        ? html`<${Catalog} plans=${plans} now=${now} me=${me} onRun=${(plan, tc) => setRunning([plan, tc])} />`
        : html`<${Empty} title="No plan yet"><p>Import one: <code>testfleet plan import examples/plans/ping</code>
            (or <code>POST /build</code> with its zip, as Testground's client does). Its cases appear here.</p><//>`}
    </section>
    <section class="panel" aria-labelledby="tasks-h"><div class="panel-head"><h2 id="tasks-h">Runs and builds</h2>
      <span class="muted small">newest ${LIMIT} at most</span></div>
      <${FilterBar} id="ft" label="Filter tasks" fields=${FIELDS(plans)} values=${values}
        apply=${(v) => navigate(`/plans${query(v)}`, { replace: true })} />
      ${tasks.length
        ? html`<${Tasks} tasks=${tasks} now=${now} />`
        : filtered
          ? html`<p class="muted">No task matches the filters.</p>`
          : html`<${Empty} title="Nothing has run yet"><p>${canOperate(me) ? "Run a case with its Run… button, or with " : "Start one with "}
              <code>testfleet plan run examples/plans/ping/composition.toml</code>.</p><//>`}
    </section>`;
}
