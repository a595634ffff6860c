// What the test plan pages share: a task's state in words, outcomes per group, and the
// dialog that runs a plan's case (a composition, pre-filled from the manifest, sent to the
// hub's `POST /run`; its problems are marked at their line).
import { html, useMemo, useState } from "./html.js";
import { daemon } from "./api.js";
import { Dialog, State } from "./components.js";
import { Editor } from "./start-job.js";
import { lineOf } from "./pointer.js";
import { navigate } from "./router.js";

/** A task's state, or its outcome once a run has one. */
export function TaskState({ task }) {
  const state = task.states.at(-1)?.state || "scheduled";
  const outcome = task.result?.outcome;
  if (task.type === "run" && outcome) return html`<${State} state=${outcome} />`;
  return html`<${State} state=${state} />`;
}

/** When a task finished (its last state's time), or null while it runs. */
export function finishedAt(task) {
  const last = task.states.at(-1);
  return last && ["complete", "canceled"].includes(last.state) ? last.created : null;
}

/** ok/total per group as small meters: "left 2/2, right 1/2". */
export function Outcomes({ outcomes }) {
  const entries = Object.entries(outcomes || {});
  if (!entries.length) return html`<span class="muted">—</span>`;
  return html`<span class="chips">${entries.map(
    ([group, { ok, total }]) => html`<span class=${`badge keep-case state-${ok === total ? "success" : "failure"}`}
      data-group=${group}>${group} ${ok}/${total}</span>`,
  )}</span>`;
}

/** A composition that runs `testcase` of `plan` as one group with the manifest's defaults. */
export function compositionFor(plan, testcase, author) {
  const manifest = plan.manifest;
  const count = testcase.instances.default ?? testcase.instances.min;
  const params = {};
  for (const [name, spec] of Object.entries(testcase.params || {})) {
    if (spec.default !== null && spec.default !== undefined) params[name] = spec.default;
  }
  return {
    metadata: { name: `${plan.name}-${testcase.name}`, author },
    global: {
      plan: plan.name,
      case: testcase.name,
      total_instances: count,
      builder: manifest.defaults.builder,
      runner: manifest.defaults.runner,
    },
    groups: [{ id: "all", instances: { count }, run: { test_params: params } }],
  };
}

/** The dialog: a composition to edit, then Run; the hub's problems at their line. */
export function RunPlan({ plan, testcase, me, onClose }) {
  const [text, setText] = useState(() => JSON.stringify(compositionFor(plan, testcase, me.name), null, 2));
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const problems = useMemo(
    () => (error?.errors || []).map((p) => ({ ...p, line: lineOf(text, p.location) })),
    [error],
  );
  const marks = new Map(problems.map((p) => [p.line, p.message]));
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      const type = text.trimStart().startsWith("{") ? "application/json" : "application/toml";
      const created = await daemon("/run", { method: "POST", body: text, type });
      onClose();
      navigate(`/plans/tasks/${created.task_id}`);
    } catch (problem) {
      setError(problem);
      setBusy(false);
    }
  };
  return html`<${Dialog} title=${`Run ${plan.name} / ${testcase.name}`} onClose=${onClose} wide>
    <div class="dialog-body">
      <p class="muted small" style="margin:0">A composition in JSON (or TOML): its groups, their
        instance counts and parameters, the runner. See docs/plans.md for every field.</p>
      <${Editor} label="Composition" text=${text} onInput=${(value) => (setText(value), setError(null))} marks=${marks} />
      ${error
        ? html`<div role="alert" data-testid="run-errors"><ul class="problems">${problems.length
            ? problems.map((p) => html`<li>Line ${p.line}, <code>${p.location}</code>: ${p.message}</li>`)
            : html`<li>${error.message}</li>`}</ul></div>`
        : null}
    </div>
    <footer class="dialog-foot">
      <span style="flex:1"></span>
      <button type="button" class="button" onClick=${onClose}>Cancel</button>
      <button type="button" class="button primary" onClick=${run} disabled=${busy || !text.trim()}>Run</button>
    </footer>
  <//>`;
}
